//! Interoperability with the Hugging Face and llama.cpp ecosystems.
//!
//! - [`export::export_hf`]: one of our checkpoints or fine-tuned models → a folder `transformers`
//!   loads as the model it was trained to be: the stock Llama class where it computes the same
//!   thing, else ours through `auto_map` ([`hf_layout`]: bidirectional attention, our pooling),
//!   checked against our outputs by `scripts/hf_parity.py`;
//! - `hf::read_hf` and [`gguf::read_gguf`]: a Hugging Face Llama-family folder (single or
//!   sharded safetensors) or a GGUF file (dequantized to f32 through candle's quantized support,
//!   with the tokenizer rebuilt from its metadata) → a [`ModelFiles`] in memory;
//! - `write_checkpoint`: a [`ModelFiles`] → a checkpoint folder of ours (`config.json`,
//!   `model.safetensors`, `tokenizer.json`, `import.json`), which `train.init_from` (continued
//!   pretraining) and `model.checkpoint` (fine-tuning) take like any checkpoint;
//! - [`lm`]: logits of a checkpoint on a fixed batch, and held-out perplexity.

pub mod export;
pub mod gguf;
pub mod hf;
pub mod hf_layout;
pub mod lm;
pub mod vocab;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::config::save_json;
use crate::error::{Error, Result};
use crate::fsutil::OwnedDir;
use crate::model::{parameter_shapes, ModelConfig};
use crate::tokenizer::save_tokenizer;

/// A model read from some format: the architecture, its weights (HF Llama names, f32 on the
/// CPU) and its tokenizer.
pub struct ModelFiles {
    /// The architecture.
    pub config: ModelConfig,
    /// Every parameter of [`parameter_shapes`] by name, f32.
    pub weights: HashMap<String, Tensor>,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
}

impl std::fmt::Debug for ModelFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFiles")
            .field("config", &self.config)
            .field("tensors", &self.weights.len())
            .field("tokenizer_ids", &self.tokenizer.get_vocab_size(true))
            .finish()
    }
}

/// What an import did, saved as `import.json` in the checkpoint folder.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The file or folder read.
    pub source: String,
    /// `hf` or `gguf`.
    pub format: String,
    /// SHA-256 of the source file (GGUF) or of its `config.json` (HF).
    pub sha256: String,
    /// Storage types of the source tensors and how many of each (e.g. `Q4_1: 210`).
    pub source_dtypes: std::collections::BTreeMap<String, usize>,
    /// Parameters of the model.
    pub parameters: usize,
    /// Where the tokenizer came from (`tokenizer.json`, or rebuilt from GGUF metadata).
    pub tokenizer: String,
    /// The id of the mask token added for MLM, if one was added.
    pub added_mask_token: Option<u32>,
}

impl ImportReport {
    /// The report of `files` imported from `source` in `format`: `hashed` is the file whose
    /// SHA-256 identifies the source, `tokenizer` where the tokenizer came from.
    fn of(
        files: &ModelFiles,
        (source, format): (&Path, &str),
        hashed: &Path,
        source_dtypes: std::collections::BTreeMap<String, usize>,
        tokenizer: String,
    ) -> Result<Self> {
        Ok(Self {
            source: source.display().to_string(),
            format: format.into(),
            sha256: crate::fsutil::sha256_file(hashed)?,
            source_dtypes,
            parameters: files.config.num_parameters(),
            tokenizer,
            added_mask_token: None,
        })
    }
}

/// Checks that `weights` holds every parameter of `cfg` with its shape; tensors the model does
/// not use (HF's `rotary_emb.inv_freq`, say) are dropped. The error names `origin` and the
/// missing or misshapen tensors.
pub(crate) fn check_weights(cfg: &ModelConfig, weights: &mut HashMap<String, Tensor>, origin: &Path) -> Result<()> {
    check_shapes(&parameter_shapes(cfg), weights, origin)
}

/// [`check_weights`] against the parameters `shapes` (HF name, shape) of any model: a backbone
/// and its task head, say.
pub(crate) fn check_shapes(
    shapes: &[(String, Vec<usize>)],
    weights: &mut HashMap<String, Tensor>,
    origin: &Path,
) -> Result<()> {
    let missing: Vec<&str> = shapes
        .iter()
        .filter(|(n, _)| !weights.contains_key(n))
        .map(|(n, _)| n.as_str())
        .collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(6).copied().collect();
        return Err(Error::data(
            origin,
            0,
            format!(
                "{} tensors the architecture needs are missing ({}{}): not a Llama-layout model, or a shard is absent",
                missing.len(),
                shown.join(", "),
                if missing.len() > shown.len() { ", …" } else { "" }
            ),
        ));
    }
    for (name, shape) in shapes {
        let t = &weights[name];
        if t.dims() != shape.as_slice() {
            return Err(Error::data(
                origin,
                0,
                format!("`{name}` has shape {:?}; config.json implies {shape:?}", t.dims()),
            ));
        }
    }
    let wanted: std::collections::HashSet<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    weights.retain(|n, _| wanted.contains(n.as_str()));
    for t in weights.values_mut() {
        if t.dtype() != DType::F32 || !t.device().same_device(&Device::Cpu) {
            *t = t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        }
    }
    Ok(())
}

/// Writes `files` as a checkpoint folder at `dir` (staged, then renamed): `config.json`,
/// `model.safetensors`, `tokenizer.json` with `tokenizer_config.json`, and `import.json`.
pub(crate) fn write_checkpoint(dir: &Path, files: &ModelFiles, report: &ImportReport) -> Result<()> {
    let stage = OwnedDir::create(dir, "import")?;
    let p = stage.path();
    save_json(&files.config.to_hf_json(), &p.join("config.json"))?;
    candle_core::safetensors::save(&files.weights, p.join("model.safetensors"))?;
    save_tokenizer(&files.tokenizer, &p.join("tokenizer.json"))?;
    save_json(report, &p.join("import.json"))?;
    stage.commit()
}

/// Options of [`import_model`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Add `<|mask|>` (and an embedding row) when the tokenizer has no mask token, for MLM.
    pub add_mask_token: bool,
    /// A `tokenizer.json` to use instead of the source's own (or of the one rebuilt from GGUF
    /// metadata).
    pub tokenizer: Option<std::path::PathBuf>,
}

/// Reads `source` (a Hugging Face folder, or a `.gguf` file) and writes it to `out` as a
/// checkpoint folder of ours. Returns what was done (also saved as `out/import.json`).
pub fn import_model(source: &Path, out: &Path, opts: &ImportOptions) -> Result<ImportReport> {
    let (mut files, mut report) = if source.is_dir() {
        hf::read_hf(source)?
    } else if source.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        gguf::read_gguf(source)?
    } else if source.exists() {
        return Err(Error::data(
            source,
            0,
            "neither a Hugging Face model folder nor a .gguf file",
        ));
    } else {
        return Err(Error::data(source, 0, "not found"));
    };
    if let Some(path) = &opts.tokenizer {
        files.tokenizer = Tokenizer::from_file(path).map_err(|e| Error::Tokenizer {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        vocab::check_vocab(&files.config, &files.tokenizer, path)?;
        report.tokenizer = path.display().to_string();
    }
    if opts.add_mask_token {
        report.added_mask_token = vocab::add_mask_token(&mut files)?;
    }
    report.parameters = files.config.num_parameters();
    write_checkpoint(out, &files, &report)?;
    Ok(report)
}
