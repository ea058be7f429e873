//! `encoderlab import encodeval|hf|gguf`, `encoderlab export hf` and `encoderlab eval perplexity|logits`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use encoderlab::data::{PackedDataset, Split};
use encoderlab::interop::export::{export_hf, ExportOptions};
use encoderlab::interop::lm::{
    check_pack_tokenizer, load_language_model, logits_file, perplexity, random_language_model,
};
use encoderlab::interop::{import_model, ImportOptions};
use encoderlab::model::{AttentionMode, ModelConfig};

/// `import` subcommands.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// The paper's released EncodEval results tree (results/<model>/<family>/<dataset>/<config>/results.json).
    Encodeval(ImportArgs),
    /// A Hugging Face Llama-family folder (config.json, single or sharded safetensors,
    /// tokenizer.json) → a checkpoint folder for continued pretraining and fine-tuning.
    Hf(ImportModelArgs),
    /// A GGUF file (Llama architecture; dequantized to f32, tokenizer rebuilt from its
    /// metadata) → a checkpoint folder for continued pretraining and fine-tuning.
    Gguf(ImportModelArgs),
}

/// Arguments of `import encodeval`.
#[derive(Args)]
pub struct ImportArgs {
    /// The EncodEval checkout or its `results` folder.
    pub dir: PathBuf,
    /// The runs table to write (.csv, or .parquet).
    #[arg(long)]
    pub out: PathBuf,
}

/// `export` subcommands.
#[derive(Subcommand)]
pub enum ExportCommand {
    /// A checkpoint folder or a fine-tuned model (runs/finetune/RUN/model) → a Hugging Face
    /// folder: the stock Llama class where it computes the same (causal), else encoderlab's
    /// bidirectional classes through auto_map (trust_remote_code=True); see its README.md.
    Hf(ExportArgs),
}

/// Arguments of `export hf`.
#[derive(Args)]
pub struct ExportArgs {
    /// The checkpoint folder (runs/pretrain/NAME/checkpoints/step-N, or an imported model), or a
    /// fine-tuned model (runs/finetune/RUN/model, written with --save-model).
    checkpoint: PathBuf,
    /// The folder to write (replaced only once complete).
    out_dir: PathBuf,
    /// The attention the exported model runs with (default: the one it was last trained with).
    /// A checkpoint only: e.g. a CLM model as the bidirectional encoder the paper fine-tunes.
    #[arg(long, value_parser = parse_attention)]
    attention: Option<AttentionMode>,
}

/// `causal` or `bidirectional`, as the configs write it.
fn parse_attention(text: &str) -> Result<AttentionMode> {
    Ok(serde_json::from_value(serde_json::Value::String(text.into()))?)
}

/// Arguments of `import hf` and `import gguf`.
#[derive(Args)]
pub struct ImportModelArgs {
    /// The Hugging Face folder (config.json, model.safetensors or shards, tokenizer.json), or
    /// the .gguf file.
    source: PathBuf,
    /// The checkpoint folder to write, for `train.init_from` and `model.checkpoint`.
    out_dir: PathBuf,
    /// Add a `<|mask|>` token (and an embedding row, the mean of the others) when the
    /// tokenizer has none: MLM needs one.
    #[arg(long)]
    add_mask_token: bool,
    /// Use this tokenizer.json instead of the source's (or the one rebuilt from GGUF metadata).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
}

/// `eval` subcommands.
#[derive(Subcommand)]
pub enum EvalCommand {
    /// Held-out causal perplexity of a checkpoint (or of a random-init model of its
    /// architecture) on a pack made with its tokenizer.
    Perplexity(PerplexityArgs),
    /// Logits of a checkpoint on a batch (safetensors: input_ids, attention_mask), causal and
    /// bidirectional, or a fine-tuned model's outputs (`outputs`: its head's logits or its
    /// embeddings): what scripts/hf_parity.py compares with transformers.
    Logits(LogitsArgs),
}

/// Arguments of `eval perplexity`.
#[derive(Args)]
pub struct PerplexityArgs {
    /// The checkpoint folder.
    checkpoint: PathBuf,
    /// A pack (`data pack`) made with the checkpoint's tokenizer.json.
    #[arg(long)]
    pack: PathBuf,
    /// Split of the pack to score.
    #[arg(long, default_value = "validation", value_parser = ["train", "validation"])]
    split: String,
    /// Blocks scored (the first ones of the split).
    #[arg(long, default_value_t = 64)]
    blocks: usize,
    /// Blocks per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Score a model of the same architecture with fresh N(0, 0.02) weights from this seed
    /// instead of the checkpoint's weights.
    #[arg(long)]
    random_init: Option<u64>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Arguments of `eval logits`.
#[derive(Args)]
pub struct LogitsArgs {
    /// The checkpoint folder, or a fine-tuned model (runs/finetune/RUN/model).
    checkpoint: PathBuf,
    /// safetensors file with `input_ids` and `attention_mask`, both (B, T).
    #[arg(long)]
    batch: PathBuf,
    /// safetensors file to write (`causal`, `bidirectional`: (B, T, V) f32; a fine-tuned model:
    /// `outputs`).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `export hf`.
pub fn export(cmd: &ExportCommand) -> Result<()> {
    let ExportCommand::Hf(a) = cmd;
    let opts = ExportOptions { attention: a.attention };
    let report = export_hf(&a.checkpoint, &a.out_dir, &opts)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Runs an `import` subcommand.
pub fn import(cmd: &ImportCommand) -> Result<()> {
    match cmd {
        ImportCommand::Encodeval(a) => {
            let rows = encoderlab::sweep::encodeval::read_encodeval(&a.dir)?;
            encoderlab::sweep::encodeval::write_runs(&rows, &a.out)?;
            println!("{} rows written to {}", rows.len(), a.out.display());
            Ok(())
        }
        ImportCommand::Hf(a) => import_model_folder(a, false),
        ImportCommand::Gguf(a) => import_model_folder(a, true),
    }
}

/// Runs `import hf` (`gguf = false`) or `import gguf`.
fn import_model_folder(a: &ImportModelArgs, gguf: bool) -> Result<()> {
    let is_gguf = a.source.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    if gguf != is_gguf {
        if gguf {
            bail!("{}: `import gguf` takes a .gguf file", a.source.display());
        }
        bail!(
            "{}: `import hf` takes a Hugging Face model folder (for a .gguf file, use `import gguf`)",
            a.source.display()
        );
    }
    let opts = ImportOptions {
        add_mask_token: a.add_mask_token,
        tokenizer: a.tokenizer.clone(),
    };
    let report = import_model(&a.source, &a.out_dir, &opts)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    println!("wrote {}", a.out_dir.display());
    Ok(())
}

/// Runs `eval perplexity` and `eval logits`.
pub fn eval(cmd: &EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Perplexity(a) => {
            encoderlab::runtime::set_threads(a.threads);
            let data = PackedDataset::open(&a.pack)?;
            check_pack_tokenizer(&a.checkpoint, &data)?;
            let dev = candle_core::Device::Cpu;
            let model = match a.random_init {
                Some(seed) => {
                    let cfg = ModelConfig::from_hf_json(&a.checkpoint.join("config.json"))?;
                    random_language_model(&cfg, seed, &dev)?
                }
                None => load_language_model(&a.checkpoint, &dev)?,
            };
            let split = if a.split == "train" {
                Split::Train
            } else {
                Split::Validation
            };
            let p = perplexity(&model, &data, split, a.blocks, a.batch_size, true)?;
            let mut out = serde_json::to_value(&p)?;
            if let Some(obj) = out.as_object_mut() {
                obj.insert("checkpoint".into(), a.checkpoint.display().to_string().into());
                obj.insert(
                    "weights".into(),
                    match a.random_init {
                        Some(seed) => format!("random init (seed {seed})"),
                        None => "checkpoint".into(),
                    }
                    .into(),
                );
                obj.insert("pack".into(), a.pack.display().to_string().into());
                obj.insert("split".into(), a.split.clone().into());
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        EvalCommand::Logits(a) => {
            logits_file(&a.checkpoint, &a.batch, &a.out)?;
            println!("wrote {}", a.out.display());
        }
    }
    Ok(())
}
