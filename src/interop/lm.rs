//! A checkpoint as a language model: its logits on a given batch (what the parity scripts
//! compare with `transformers`), and its held-out perplexity on a packed corpus (causal: each
//! token predicted from the ones before it in its block).

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;

use crate::data::{PackedDataset, Split};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::init::INIT_STREAM;
use crate::model::{init_weights, AttentionMode, LanguageModel, ModelConfig};
use crate::objectives::{clm_batch, loss};
use crate::rng::seeded;
use crate::runtime::progress_bar;
use crate::tokenizer::TextTokenizer;
use crate::train::checkpoint::load_weights;

/// Loads the checkpoint folder `dir` (`config.json`, `model.safetensors`) as a language model.
pub fn load_language_model(dir: &Path, device: &Device) -> Result<LanguageModel> {
    let cfg = ModelConfig::from_hf_json(&dir.join("config.json"))?;
    let map = VarMap::new();
    let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, device))?;
    load_weights(dir, &map, device)?;
    Ok(model)
}

/// A model of architecture `cfg` with freshly initialised weights: the N(0, 0.02) draw a
/// pretraining run of seed `seed` starts from, the untrained reference of a perplexity.
pub fn random_language_model(cfg: &ModelConfig, seed: u64, device: &Device) -> Result<LanguageModel> {
    let map = init_weights(cfg, &mut seeded(seed, INIT_STREAM), device)?;
    Ok(LanguageModel::new(
        cfg,
        VarBuilder::from_varmap(&map, DType::F32, device),
    )?)
}

/// Logits (B, T, V) of `model` on `input_ids` (B, T) with padding `mask` (B, T; 1 = token).
pub fn logits(model: &LanguageModel, input_ids: &Tensor, mask: Option<&Tensor>, mode: AttentionMode) -> Result<Tensor> {
    let ids = input_ids.to_dtype(DType::U32)?;
    Ok(model.forward_t(&ids, mask, mode, false)?)
}

/// Reads `input_ids` and `attention_mask` (B, T, any integer or float type) from the safetensors
/// file `batch`, and writes to `out` a checkpoint's `causal` and `bidirectional` logits (B, T, V,
/// f32), or a fine-tuned model's `outputs` (its head's logits, or its embeddings: see
/// [`crate::finetune::saved::task_outputs`]).
pub fn logits_file(checkpoint: &Path, batch: &Path, out: &Path) -> Result<()> {
    let dev = Device::Cpu;
    let fine_tuned = crate::finetune::saved::TaskHead::read(&checkpoint.join("config.json"))?.is_some();
    let tensors = crate::train::checkpoint::read_safetensors(batch, &dev, "the input batch")?;
    let get = |name: &str| {
        tensors.get(name).ok_or_else(|| {
            Error::data(
                batch,
                0,
                format!("no tensor `{name}` (want input_ids and attention_mask, (B, T))"),
            )
        })
    };
    let ids = get("input_ids")?; // any integer type: `logits` casts it
    let mask = get("attention_mask")?.to_dtype(DType::F32)?;
    let mut outputs = std::collections::HashMap::new();
    if fine_tuned {
        let outs = crate::finetune::saved::task_outputs(checkpoint, ids, &mask)?;
        outputs.insert("outputs".to_string(), outs);
        return write_tensors(&outputs, out);
    }
    let model = load_language_model(checkpoint, &dev)?;
    for (name, mode) in [
        ("causal", AttentionMode::Causal),
        ("bidirectional", AttentionMode::Bidirectional),
    ] {
        outputs.insert(name.to_string(), logits(&model, ids, Some(&mask), mode)?);
    }
    write_tensors(&outputs, out)
}

/// Writes `outputs` to the safetensors file `out`, atomically.
fn write_tensors(outputs: &std::collections::HashMap<String, Tensor>, out: &Path) -> Result<()> {
    let mut names: Vec<&String> = outputs.keys().collect();
    names.sort();
    let bytes = safetensors::serialize(names.into_iter().map(|n| (n.as_str(), &outputs[n])), None)
        .map_err(|e| Error::data(out, 0, e.to_string()))?;
    write_atomic(out, &bytes)
}

/// A held-out perplexity.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Perplexity {
    /// Blocks scored.
    pub blocks: usize,
    /// Tokens predicted (each block's first token has no prediction).
    pub tokens: usize,
    /// Mean negative log-likelihood in nats per token.
    pub mean_nll: f64,
    /// exp(mean NLL).
    pub perplexity: f64,
    /// Seconds taken.
    pub seconds: f64,
}

/// Checks that `data` was packed with the tokenizer of the checkpoint at `dir`.
pub fn check_pack_tokenizer(dir: &Path, data: &PackedDataset) -> Result<()> {
    let tok_path = dir.join("tokenizer.json");
    let tok = TextTokenizer::load(&tok_path)?;
    if tok.sha256() != data.meta().tokenizer.sha256 {
        return Err(Error::data(
            data.dir().join("meta.json"),
            0,
            format!(
                "packed with {} (sha256 {}…), not with this model's {}: pack the text with `data pack --tokenizer {}`",
                data.meta().tokenizer.path.display(),
                &data.meta().tokenizer.sha256[..12],
                tok_path.display(),
                tok_path.display()
            ),
        ));
    }
    Ok(())
}

/// The causal perplexity of `model` over the first `max_blocks` blocks of `split` of `data`,
/// `batch_size` blocks at a time.
pub fn perplexity(
    model: &LanguageModel,
    data: &PackedDataset,
    split: Split,
    max_blocks: usize,
    batch_size: usize,
    progress: bool,
) -> Result<Perplexity> {
    let started = Instant::now();
    let n = (max_blocks as u64).min(data.blocks(split)) as usize;
    if n == 0 {
        return Err(Error::data(data.dir(), 0, "no block in that split to score"));
    }
    let dev = model.head_weight().device().clone();
    let bar = progress_bar(progress, n, 0, "blocks");
    let (mut nll, mut tokens) = (0.0f64, 0usize);
    let indices: Vec<u64> = (0..n as u64).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let blocks = chunk
            .iter()
            .map(|&i| data.block(split, i))
            .collect::<Result<Vec<_>>>()?;
        let batch = clm_batch(&blocks);
        let scored = batch.scored();
        let mean = loss(model, &batch, &dev, false)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        nll += mean * scored as f64;
        tokens += scored;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let mean_nll = nll / tokens.max(1) as f64;
    Ok(Perplexity {
        blocks: n,
        tokens,
        mean_nll,
        perplexity: mean_nll.exp(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
