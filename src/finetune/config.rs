//! The fine-tuning configuration (`configs/finetune/*.toml`): which backbone, which dataset,
//! and the paper's protocol as defaults (AdamW β=(0.9, 0.95), ε=1e-5, weight decay 0.1, batch
//! 32, 1000 steps, 10 % warmup then linear decay). Unknown keys are refused; the resolved
//! configuration is saved with the run, and its hash is the run's id.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::registry::Registry;
use crate::error::{Error, Result};
use crate::heads::Pooling;
use crate::model::AttentionMode;
use crate::train::OptimConfig;

/// Where the backbone's weights come from.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// The checkpoint's weights (its LM head left out).
    #[default]
    Pretrained,
    /// Fresh weights of the checkpoint's architecture, drawn from the run's seed: the
    /// random-init baseline.
    Random,
}

/// The backbone.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    /// A checkpoint folder: ours (`checkpoints/step-N`) or any HF Llama layout
    /// (`model.safetensors`, `config.json`, `tokenizer.json`).
    pub checkpoint: PathBuf,
    /// The `model` column of the runs table (default: the checkpoint's run folder name).
    #[serde(default)]
    pub name: Option<String>,
    /// The `objective` column (default: from the checkpoint's `trainer_state.json`, e.g. `clm`,
    /// `mlm40`, `clm-mlm40`; `random` for a random init; else `unknown`).
    #[serde(default)]
    pub objective: Option<String>,
    /// The `pretrain_seed` column: which pretraining run of the system this backbone is
    /// (default: the checkpoint's pretraining seed from `trainer_state.json`, else 0). Runs of
    /// one (`name`, `objective`) with different pretraining seeds are replicates of one system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain_seed: Option<i64>,
    /// Pretrained weights or a random-init baseline.
    #[serde(default)]
    pub init: Init,
    /// Attention while fine-tuning (bidirectional for every backbone by default).
    #[serde(default = "bidirectional")]
    pub attention: AttentionMode,
    /// Pooling of the sequence classifier.
    #[serde(default)]
    pub pooling: Pooling,
}

impl BackboneConfig {
    /// The checkpoint at `checkpoint`, every other field at its default.
    pub fn new(checkpoint: PathBuf) -> Self {
        Self {
            checkpoint,
            name: None,
            objective: None,
            pretrain_seed: None,
            init: Init::default(),
            attention: bidirectional(),
            pooling: Pooling::default(),
        }
    }
}

fn bidirectional() -> AttentionMode {
    AttentionMode::Bidirectional
}

/// The task and how its examples become inputs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// A registry name (`configs/datasets.toml`, or `registry`'s).
    pub dataset: String,
    /// The data folder the registry's paths are relative to.
    #[serde(default = "data_dir")]
    pub data_dir: PathBuf,
    /// A dataset registry of your own (the format of `configs/datasets.toml`) to find `dataset`
    /// in, instead of the built-in one (`--registry FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<PathBuf>,
    /// Longest input in tokens.
    #[serde(default = "max_length")]
    pub max_length: usize,
    /// QA: context tokens shared by consecutive windows.
    #[serde(default = "doc_stride")]
    pub doc_stride: usize,
    /// QA: the question is cut to this many tokens.
    #[serde(default = "max_question_tokens")]
    pub max_question_tokens: usize,
    /// QA: longest answer in tokens.
    #[serde(default = "max_answer_tokens")]
    pub max_answer_tokens: usize,
    /// QA: start and end candidates per window.
    #[serde(default = "n_best")]
    pub n_best: usize,
    /// Retrieval: the temperature of the in-batch contrastive loss.
    #[serde(default = "temperature")]
    pub temperature: f64,
    /// Retrieval: where the training pairs come from: an extractive-QA dataset (its training
    /// questions and their passages) or a retrieval dataset with a `train` qrels split (its
    /// training queries and their judged documents, e.g. `bbc_news_retrieval`).
    #[serde(default = "train_pairs")]
    pub train_pairs: String,
    /// Retrieval: the data folder of `train_pairs` (default: `data_dir`), e.g. the shared
    /// bundle's SQuAD while the test set is a fetched one.
    #[serde(default)]
    pub train_pairs_dir: Option<PathBuf>,
    /// Share of train held out (seeded) as validation when the dataset has no separate
    /// validation and test splits.
    #[serde(default = "validation_fraction")]
    pub validation_fraction: f64,
    /// Use only the first N training examples (0: all) — for quick runs.
    #[serde(default)]
    pub max_train_examples: usize,
    /// Score only the first N examples (queries) of each evaluation split (0: all).
    #[serde(default)]
    pub max_eval_examples: usize,
    /// Retrieval: rank among at most N documents of the test corpus (0: all): every document
    /// judged for the scored queries, then the others in corpus order. A smaller pool is an
    /// easier task: for CPU budgets with large models, compared only with runs of the same N.
    /// (Left out of the saved configuration when 0, so that run ids made before it stay.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_corpus_docs: usize,
}

impl TaskConfig {
    /// The registry `dataset` is looked up in: `registry`'s file, else the built-in one.
    pub fn registry(&self) -> Result<Registry> {
        Registry::of_key(self.registry.as_deref())
    }

    /// The dataset `dataset`, every other field at its default.
    pub fn new(dataset: &str) -> Self {
        Self {
            dataset: dataset.to_string(),
            data_dir: data_dir(),
            registry: None,
            max_length: max_length(),
            doc_stride: doc_stride(),
            max_question_tokens: max_question_tokens(),
            max_answer_tokens: max_answer_tokens(),
            n_best: n_best(),
            temperature: temperature(),
            train_pairs: train_pairs(),
            train_pairs_dir: None,
            validation_fraction: validation_fraction(),
            max_train_examples: 0,
            max_eval_examples: 0,
            max_corpus_docs: 0,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The `model` column of a linear probe of `model` (`train.freeze_backbone`).
pub(crate) fn probe_name(model: &str) -> String {
    format!("{model}:probe")
}

/// Whether a `model` column names a linear probe.
pub(crate) fn is_probe(model: &str) -> bool {
    model.ends_with(":probe")
}

fn data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn max_length() -> usize {
    128
}
fn doc_stride() -> usize {
    32
}
fn max_question_tokens() -> usize {
    64
}
fn max_answer_tokens() -> usize {
    30
}
fn n_best() -> usize {
    20
}
fn temperature() -> f64 {
    0.05
}
fn train_pairs() -> String {
    "squad".into()
}
fn validation_fraction() -> f64 {
    0.05
}

/// The loop.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FinetuneTrainConfig {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Seed of the head's weights (and a random backbone's), the validation split and the
    /// data order.
    #[serde(default)]
    pub seed: u64,
    /// Examples per optimizer step.
    #[serde(default = "batch_size")]
    pub batch_size: usize,
    /// Micro-batches per step (batch_size is split across them).
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// Optimizer steps (ignored when `epochs` is set).
    #[serde(default = "max_steps")]
    pub max_steps: usize,
    /// Passes over the training set instead of `max_steps` (the paper: 1 for token
    /// classification).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// A linear probe: the backbone's weights stay as loaded and only the head trains, on the
    /// backbone's features (no gradient flows into it). Sequence and token classification
    /// only. The run's `model` column gets `:probe` appended, so that it is its own system.
    #[serde(default, skip_serializing_if = "crate::config::is_false")]
    pub freeze_backbone: bool,
    /// Share of the steps spent warming up (then linear decay to 0).
    #[serde(default = "warmup_ratio")]
    pub warmup_ratio: f64,
    /// Examples per evaluation batch.
    #[serde(default = "eval_batch_size")]
    pub eval_batch_size: usize,
    /// Append a line to metrics.jsonl every this many steps.
    #[serde(default = "log_every")]
    pub log_every: usize,
    /// `cpu` or `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
    /// Run records go to `{out_dir}/{run_id}/`.
    #[serde(default = "out_dir")]
    pub out_dir: PathBuf,
    /// Write a TensorBoard event file (`tensorboard/` in the run record) beside `metrics.jsonl`
    /// (default: on; `--no-tensorboard` turns it off).
    #[serde(default = "crate::config::yes", skip_serializing_if = "crate::config::is_true")]
    pub tensorboard: bool,
    /// Save the fine-tuned model (backbone and head) in the run record's `model/` folder, for
    /// `export hf` and `eval logits` (default: off; `--save-model` turns it on). Like the logs,
    /// it leaves the run's id unchanged.
    #[serde(default, skip_serializing_if = "crate::config::is_false")]
    pub save_model: bool,
}

impl FinetuneTrainConfig {
    /// Peak learning rate `learning_rate`, every other field at its default.
    pub fn new(learning_rate: f64) -> Self {
        Self {
            learning_rate,
            seed: 0,
            batch_size: batch_size(),
            grad_accum: one(),
            max_steps: max_steps(),
            epochs: None,
            freeze_backbone: false,
            warmup_ratio: warmup_ratio(),
            eval_batch_size: eval_batch_size(),
            log_every: log_every(),
            device: cpu(),
            out_dir: out_dir(),
            tensorboard: true,
            save_model: false,
        }
    }
}

fn batch_size() -> usize {
    32
}
fn one() -> usize {
    1
}
fn max_steps() -> usize {
    1000
}
fn warmup_ratio() -> f64 {
    0.1
}
fn eval_batch_size() -> usize {
    64
}
fn log_every() -> usize {
    10
}
fn cpu() -> String {
    "cpu".into()
}
fn out_dir() -> PathBuf {
    PathBuf::from("runs/finetune")
}

/// A whole fine-tuning run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    /// The backbone.
    pub model: BackboneConfig,
    /// The task.
    pub task: TaskConfig,
    /// The loop.
    pub train: FinetuneTrainConfig,
    /// AdamW.
    #[serde(default)]
    pub optim: OptimConfig,
}

impl FinetuneConfig {
    /// Reads `path`, applies `overrides` (`key.path=value`), parses (unknown keys refused) and
    /// validates ([`crate::config::load_config`]).
    pub fn load(path: impl AsRef<Path>, overrides: &[String]) -> Result<Self> {
        crate::config::load_config(path.as_ref(), overrides)
    }

    /// As [`FinetuneConfig::load`] from text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path, overrides: &[String]) -> Result<Self> {
        crate::config::parse_config(text, origin, overrides)
    }

    /// A short hash of the resolved configuration: the run's id and folder name.
    pub fn run_id(&self) -> Result<String> {
        // the logs and the model a run writes are not the run: the id is that of the config
        // with the logs on and the model not saved
        let mut run = self.clone();
        run.train.tensorboard = true;
        run.train.save_model = false;
        crate::config::config_id(&run)
    }

    /// The run's folder.
    pub fn run_dir(&self) -> Result<PathBuf> {
        Ok(self.train.out_dir.join(self.run_id()?))
    }
}

impl crate::config::ConfigFile for FinetuneConfig {
    /// Checks every field once.
    fn validate(&self) -> Result<()> {
        let (t, k) = (&self.train, &self.task);
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return Err(Error::config(
                "train.learning_rate",
                format!("{} must be positive", t.learning_rate),
            ));
        }
        for (field, v) in [
            ("train.batch_size", t.batch_size),
            ("train.grad_accum", t.grad_accum),
            ("train.max_steps", t.max_steps),
            ("train.eval_batch_size", t.eval_batch_size),
            ("train.log_every", t.log_every),
            ("task.max_length", k.max_length),
            ("task.max_answer_tokens", k.max_answer_tokens),
            ("task.n_best", k.n_best),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        if t.epochs == Some(0) {
            return Err(Error::config(
                "train.epochs",
                "must be at least 1 (or left out for max_steps)",
            ));
        }
        if t.batch_size % t.grad_accum != 0 {
            return Err(Error::config(
                "train.grad_accum",
                format!("{} does not divide batch_size {}", t.grad_accum, t.batch_size),
            ));
        }
        if !(0.0..1.0).contains(&t.warmup_ratio) {
            return Err(Error::config(
                "train.warmup_ratio",
                format!("{} is not in [0, 1)", t.warmup_ratio),
            ));
        }
        if !(k.validation_fraction > 0.0 && k.validation_fraction < 1.0) {
            return Err(Error::config(
                "task.validation_fraction",
                format!("{} is not in (0, 1)", k.validation_fraction),
            ));
        }
        if !(k.temperature.is_finite() && k.temperature > 0.0) {
            return Err(Error::config(
                "task.temperature",
                format!("{} must be positive", k.temperature),
            ));
        }
        if k.max_length < 8 {
            return Err(Error::config(
                "task.max_length",
                format!("{} tokens is too short", k.max_length),
            ));
        }
        Registry::check_key("task.registry", k.registry.as_deref())?;
        if t.device != "cpu" && !t.device.starts_with("cuda") {
            return Err(Error::config(
                "train.device",
                format!("`{}`: use cpu or cuda:N", t.device),
            ));
        }
        self.optim.validate()
    }
}
