//! The pretraining configuration: one TOML file (`configs/pretrain/*.toml`), dotted `--set`
//! overrides, validated once, saved resolved next to every checkpoint. A run's id is the hash of
//! its resolved configuration.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::objectives::MaskingConfig;
use crate::schedule::{total_steps, validate_phases, LrConfig, Phase};
use crate::train::OptimConfig;

/// The model: a preset, with any HF field overridden (`vocab_size` defaults to the tokenizer's).
/// Without a preset, a run with `train.init_from` takes that checkpoint's architecture.
/// Unknown fields are refused by [`PretrainConfig::load`] (serde cannot both flatten and deny).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ModelSpec {
    /// `tiny`, `small`, `210m`, `610m` or `1b`.
    pub preset: Option<String>,
    /// Overrides of the preset's fields.
    #[serde(flatten)]
    pub overrides: toml::Table,
}

/// The data stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A folder written by `encoderlab data pack`.
    pub pack: PathBuf,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// Held-out blocks scored at each evaluation (the first ones of the validation split).
    #[serde(default = "eval_blocks")]
    pub eval_blocks: usize,
}

impl DataConfig {
    /// Batches of `batch_size` blocks of the pack at `pack`, every other field at its default.
    pub fn new(pack: PathBuf, batch_size: usize) -> Self {
        Self {
            pack,
            batch_size,
            grad_accum: one(),
            eval_blocks: eval_blocks(),
        }
    }
}

fn one() -> usize {
    1
}
fn eval_blocks() -> usize {
    16
}

/// The loop.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of weights, data order and masks.
    #[serde(default)]
    pub seed: u64,
    /// The phases, in order (their steps add up to the run's length).
    pub phases: Vec<Phase>,
    /// Evaluate every this many optimizer steps (and at the end).
    pub eval_every_steps: usize,
    /// Checkpoint every this many steps (and at the end).
    pub checkpoint_every_steps: usize,
    /// Periodic checkpoints kept (milestones are always kept).
    #[serde(default = "keep_last")]
    pub keep_last: usize,
    /// Steps whose checkpoints are kept whatever `keep_last` says (the paper's intermediate
    /// checkpoints).
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Zero the AdamW moments when the objective switches (default: keep them; the paper's
    /// code reloads the weights only, so both are defensible: keeping them makes the switch a
    /// change of loss, nothing else).
    #[serde(default)]
    pub reset_optimizer_at_switch: bool,
    /// Continue from these weights (our checkpoint, or an HF Llama-layout folder with
    /// `model.safetensors` and `config.json`).
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    /// `cpu` or `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
    /// The dtype the forward and backward compute in: `f32` (default), or `bf16` with f32
    /// weights, optimizer moments and checkpoints (mixed precision, for GPUs; on the CPU bf16
    /// products are widened to f32 by candle, so it runs but is slower than f32).
    #[serde(default)]
    pub dtype: Precision,
    /// Where runs go: the run's folder is `{out_dir}/{name}`.
    #[serde(default = "out_dir")]
    pub out_dir: PathBuf,
    /// Write TensorBoard event files (`tensorboard/` in the run's folder) beside
    /// `metrics.jsonl` (default: on; `--no-tensorboard` turns it off).
    #[serde(default = "crate::config::yes", skip_serializing_if = "crate::config::is_true")]
    pub tensorboard: bool,
    /// Recompute each block's activations in the backward instead of keeping them: less
    /// memory (a block's input and output kept instead of all its intermediates), one more
    /// forward per block, the same weights bit for bit (so it is not part of the run's
    /// identity, and a resumed run may turn it on or off).
    #[serde(default, skip_serializing_if = "crate::config::is_false")]
    pub activation_checkpointing: bool,
}

/// The compute dtype of a run.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// bf16 products, f32 weights, norms, softmax and loss.
    Bf16,
}

impl Precision {
    /// The candle dtype.
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
        }
    }
}

impl TrainConfig {
    /// The loop over `phases`, evaluating and checkpointing every `every` steps, every other
    /// field at its default.
    pub fn new(phases: Vec<Phase>, every: usize) -> Self {
        Self {
            seed: 0,
            phases,
            eval_every_steps: every,
            checkpoint_every_steps: every,
            keep_last: keep_last(),
            milestones: Vec::new(),
            reset_optimizer_at_switch: false,
            init_from: None,
            device: cpu(),
            dtype: Precision::default(),
            out_dir: out_dir(),
            tensorboard: true,
            activation_checkpointing: false,
        }
    }
}

fn keep_last() -> usize {
    2
}
fn cpu() -> String {
    "cpu".into()
}
fn out_dir() -> PathBuf {
    PathBuf::from("runs/pretrain")
}

/// Everything a pretraining run needs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    /// Name of the run (its folder).
    pub name: String,
    /// The model (resolved: every field present once validated). May be left out when
    /// `train.init_from` gives the architecture.
    #[serde(default)]
    pub model: ModelSpec,
    /// Data.
    pub data: DataConfig,
    /// The loop.
    pub train: TrainConfig,
    /// Learning rate.
    pub lr: LrConfig,
    /// AdamW.
    #[serde(default)]
    pub optim: OptimConfig,
    /// MLM masking.
    #[serde(default)]
    pub masking: MaskingConfig,
}

impl PretrainConfig {
    /// Reads `path`, applies `overrides` (`key.path=value`), parses (unknown keys rejected) and
    /// validates ([`crate::config::load_config`]).
    pub fn load(path: impl AsRef<Path>, overrides: &[String]) -> Result<Self> {
        crate::config::load_config(path.as_ref(), overrides)
    }

    /// Whether `other` describes the same run: equal but for what only changes the logs it
    /// writes (`train.tensorboard`) or how it computes the same bits
    /// (`train.activation_checkpointing`), so that a resumed run may turn them on or off.
    pub fn same_run(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }

    /// The run this config describes: itself with what only changes the logs it writes
    /// (`train.tensorboard`) or the memory it takes (`train.activation_checkpointing`) at
    /// their defaults.
    fn identity(&self) -> Self {
        let mut run = self.clone();
        run.train.tensorboard = true;
        run.train.activation_checkpointing = false;
        run
    }

    /// The model configuration: the preset, its overrides, and the tokenizer's vocabulary size
    /// unless set.
    pub fn resolve_model(&self, tokenizer_vocab: usize) -> Result<ModelConfig> {
        let mut table = match (&self.model.preset, &self.train.init_from) {
            // no preset: the architecture of the checkpoint it starts from (an imported model)
            (None, Some(dir)) => toml::Table::try_from(ModelConfig::from_hf_json(&dir.join("config.json"))?)
                .map_err(|e| Error::config("model", e.to_string()))?,
            (preset, _) => {
                let mut t = match preset {
                    Some(p) => toml::Table::try_from(ModelConfig::preset(p)?)
                        .map_err(|e| Error::config("model", e.to_string()))?,
                    None => toml::Table::new(),
                };
                // the tokenizer's size unless an override sets it
                t.insert("vocab_size".into(), toml::Value::Integer(tokenizer_vocab as i64));
                t
            }
        };
        for (k, v) in &self.model.overrides {
            table.insert(k.clone(), v.clone());
        }
        let cfg: ModelConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| Error::config("model", e.to_string()))?;
        cfg.validate()?;
        if cfg.vocab_size < tokenizer_vocab {
            return Err(Error::config(
                "model.vocab_size",
                format!("{} is below the tokenizer's {tokenizer_vocab} ids", cfg.vocab_size),
            ));
        }
        Ok(cfg)
    }

    /// Optimizer steps of the whole run.
    pub fn total_steps(&self) -> usize {
        total_steps(&self.train.phases)
    }

    fn validate_fields(&self) -> Result<()> {
        crate::config::check_folder_name("name", &self.name)?;
        validate_phases(&self.train.phases)?;
        let total = self.total_steps();
        self.lr.validate(total)?;
        self.optim.validate()?;
        self.masking.validate()?;
        for (field, v) in [
            ("data.batch_size", self.data.batch_size),
            ("data.grad_accum", self.data.grad_accum),
            ("data.eval_blocks", self.data.eval_blocks),
            ("train.eval_every_steps", self.train.eval_every_steps),
            ("train.checkpoint_every_steps", self.train.checkpoint_every_steps),
            ("train.keep_last", self.train.keep_last),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        if let Some(m) = self.train.milestones.iter().find(|m| **m == 0 || **m > total) {
            return Err(Error::config(
                "train.milestones",
                format!("step {m} is outside the run's 1..={total} steps"),
            ));
        }
        if self.train.device != "cpu" && !self.train.device.starts_with("cuda") {
            return Err(Error::config(
                "train.device",
                format!("`{}`: use cpu or cuda:N", self.train.device),
            ));
        }
        if let Some(p) = &self.model.preset {
            ModelConfig::preset(p)?;
        }
        let known = toml::Table::try_from(ModelConfig::tiny()).map_err(|e| Error::config("model", e.to_string()))?;
        if let Some(k) = self.model.overrides.keys().find(|k| !known.contains_key(*k)) {
            return Err(Error::config(
                format!("model.{k}"),
                format!(
                    "unknown field; the model's fields are preset, {}",
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// A short hash of the resolved configuration (the run's identity).
    pub fn run_id(&self) -> Result<String> {
        crate::config::config_id(&self.identity())
    }

    /// The run's folder.
    pub fn run_dir(&self) -> PathBuf {
        self.train.out_dir.join(&self.name)
    }
}

impl crate::config::ConfigFile for PretrainConfig {
    fn validate(&self) -> Result<()> {
        self.validate_fields()
    }
}
