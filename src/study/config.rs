//! A study's configuration (`configs/study/*.toml`): the data, the tokenizer, the pretraining
//! arms at one step budget, the fine-tuning grid and the analysis settings. Three presets are
//! built in (`demo`, `standard`, `paper`); any file with the same fields is a study too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::model::ModelConfig;
use crate::stats::report::NanPolicy;

pub use super::plans::{DatasetPlan, FinetunePlan, PretrainPlan, ProbePlan, TokenizerPlan};

/// The built-in presets, by name.
pub const PRESETS: [(&str, &str); 3] = [
    ("demo", include_str!("../../configs/study/demo.toml")),
    ("standard", include_str!("../../configs/study/standard.toml")),
    ("paper", include_str!("../../configs/study/paper.toml")),
];

/// The analysis.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnalysisPlan {
    /// Confidence level of every interval.
    pub confidence: f64,
    /// Significance level of the verdicts (after Holm's correction).
    pub alpha: f64,
    /// Failed runs: impute the chance score (default) or drop.
    pub nan_policy: NanPolicy,
    /// Resamples of the bootstrap intervals of the full analysis report.
    pub bootstrap_resamples: usize,
    /// Resamples of its stratified aggregates.
    pub aggregate_reps: usize,
}

/// What a cluster run of the study assumes (the `paper` preset's estimate).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterPlan {
    /// The accelerator, in words.
    pub gpu: String,
    /// Its dense bf16 peak, in TFLOP/s.
    pub peak_tflops: f64,
    /// The share of the peak a run achieves (model FLOPs utilisation).
    pub mfu: f64,
    /// Tokens per fine-tuning example (padding included).
    pub finetune_tokens_per_example: usize,
    /// Slurm partition of the sweep (and of the pretraining jobs unless their shape names one).
    #[serde(default)]
    pub partition: Option<String>,
    /// The processes of each pretraining arm's job (data parallel: nodes × ranks per node, a
    /// GPU per rank); default one rank.
    #[serde(default, skip_serializing_if = "is_default_shape")]
    pub pretrain_job: crate::dist::slurm::JobShape,
}

fn is_default_shape(s: &crate::dist::slurm::JobShape) -> bool {
    *s == crate::dist::slurm::JobShape::default()
}

/// A study.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Name (the report's title).
    pub name: String,
    /// What it is for, in a sentence.
    pub description: String,
    /// The data folder of the fine-tuning datasets and the pretraining text.
    pub data_dir: PathBuf,
    /// Fetch the default datasets into `data_dir` where missing.
    #[serde(default)]
    pub fetch: bool,
    /// A dataset registry of your own (the format of `configs/datasets.toml`) to find the
    /// grid's and the tokenizer's datasets in, instead of the built-in one; every fine-tuning
    /// run of the grid reads it (`task.registry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<PathBuf>,
    /// Where every artefact goes.
    pub out: PathBuf,
    /// Seed of the pretraining runs, the pack and the analysis.
    #[serde(default)]
    pub seed: u64,
    /// Run it here, or only emit its configs and cluster scripts.
    #[serde(default = "yes")]
    pub runnable: bool,
    /// Tokenizer and blocks.
    pub tokenizer: TokenizerPlan,
    /// The arms.
    pub pretrain: PretrainPlan,
    /// The grid.
    pub finetune: FinetunePlan,
    /// The analysis.
    pub analysis: AnalysisPlan,
    /// Cluster assumptions (for `--dry-run` estimates).
    #[serde(default)]
    pub cluster: Option<ClusterPlan>,
}

fn yes() -> bool {
    true
}

impl StudyConfig {
    /// The registry the study's datasets are found in: `registry`'s file, else the built-in one.
    pub fn registry(&self) -> Result<crate::data::Registry> {
        crate::data::Registry::of_key(self.registry.as_deref())
    }

    /// A built-in preset.
    pub fn preset(name: &str) -> Result<Self> {
        let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            Error::config("preset", format!("unknown preset `{name}`; use {}", names.join(", ")))
        })?;
        Self::parse(text, &PathBuf::from(format!("configs/study/{name}.toml")))
    }

    /// Reads a study file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::parse(&std::fs::read_to_string(path).at(path)?, path)
    }

    /// Parses (unknown keys refused) and validates.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        crate::config::parse_config(text, origin, &[])
    }

    /// The pretraining seeds, the first one's runs named after their arm alone.
    pub fn pretrain_seeds(&self) -> Vec<u64> {
        if self.pretrain.seeds.is_empty() {
            vec![self.seed]
        } else {
            self.pretrain.seeds.clone()
        }
    }

    /// The peak learning rate of the arms of `size`.
    pub fn peak_lr(&self, size: &str) -> f64 {
        self.pretrain
            .size_peak_lr
            .get(size)
            .copied()
            .unwrap_or(self.pretrain.peak_lr)
    }

    /// The pretraining seeds of F6's arms (`ratio_seeds`, or every seed).
    pub fn ratio_seeds(&self) -> Vec<u64> {
        if self.pretrain.ratio_seeds.is_empty() {
            self.pretrain_seeds()
        } else {
            self.pretrain.ratio_seeds.clone()
        }
    }

    /// Model sizes of the study, the main one first.
    pub fn sizes(&self) -> Vec<String> {
        let mut v = vec![self.pretrain.size.clone()];
        v.extend(
            self.pretrain
                .ratio_sizes
                .iter()
                .filter(|s| **s != self.pretrain.size)
                .cloned(),
        );
        v
    }

    /// The masking ratios of the 100 % MLM arms, the main one first.
    pub fn ratios(&self) -> Vec<f64> {
        let mut v = vec![self.pretrain.mlm_ratio];
        v.extend(
            self.pretrain
                .other_ratios
                .iter()
                .filter(|r| **r != self.pretrain.mlm_ratio),
        );
        v
    }
}

impl crate::config::ConfigFile for StudyConfig {
    fn validate(&self) -> Result<()> {
        crate::data::Registry::check_key("registry", self.registry.as_deref())?;
        let p = &self.pretrain;
        for size in self.sizes() {
            ModelConfig::preset(&size).map_err(|e| Error::config("pretrain.size", e.to_string()))?;
        }
        for (field, v) in [
            ("tokenizer.vocab_size", self.tokenizer.vocab_size),
            ("tokenizer.seq_len", self.tokenizer.seq_len),
            ("pretrain.steps", p.steps),
            ("pretrain.batch_size", p.batch_size),
            ("pretrain.grad_accum", p.grad_accum),
            ("pretrain.workers", p.workers),
            ("pretrain.eval_every_steps", p.eval_every_steps),
            ("finetune.steps", self.finetune.steps),
            ("finetune.batch_size", self.finetune.batch_size),
            ("finetune.workers", self.finetune.workers),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        if p.warmup_steps + p.decay_steps > p.steps {
            return Err(Error::config(
                "pretrain.decay_steps",
                format!(
                    "warmup {} + decay {} exceed the {} steps",
                    p.warmup_steps, p.decay_steps, p.steps
                ),
            ));
        }
        for r in self.ratios() {
            crate::objectives::mlm::check_ratio("pretrain.mlm_ratio", r)?;
        }
        let mut seeds = p.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != p.seeds.len() {
            return Err(Error::config("pretrain.seeds", "a seed is listed twice"));
        }
        for s in &p.clm_shares {
            let switch = (s * p.steps as f64).round() as usize;
            if !(*s > 0.0 && *s < 1.0) || switch == 0 || switch >= p.steps {
                return Err(Error::config(
                    "pretrain.clm_shares",
                    format!("{s} must be in (0, 1) and leave at least one step of each objective"),
                ));
            }
        }
        if let Some(m) = p.intermediate.iter().find(|m| **m == 0 || **m >= p.steps) {
            return Err(Error::config(
                "pretrain.intermediate",
                format!("step {m} is not inside the run's 1..{} steps", p.steps),
            ));
        }
        for (field, listed) in [
            ("pretrain.intermediate_seeds", &p.intermediate_seeds),
            ("pretrain.ratio_seeds", &p.ratio_seeds),
        ] {
            if let Some(s) = listed.iter().find(|s| !self.pretrain_seeds().contains(s)) {
                return Err(Error::config(
                    field,
                    format!(
                        "seed {s} is not a pretraining seed; use some of {:?}",
                        self.pretrain_seeds()
                    ),
                ));
            }
        }
        let sizes = self.sizes();
        for (size, lr) in &p.size_peak_lr {
            if !sizes.contains(size) {
                return Err(Error::config(
                    format!("pretrain.size_peak_lr.{size}"),
                    format!("`{size}` is not a size of the study; use one of {sizes:?}"),
                ));
            }
            if !(lr.is_finite() && *lr > 0.0) {
                return Err(Error::config(
                    format!("pretrain.size_peak_lr.{size}"),
                    "must be a positive number",
                ));
            }
        }
        let f = &self.finetune;
        for size in self.sizes() {
            let positions = ModelConfig::preset(&size)?.max_position_embeddings;
            if self.tokenizer.seq_len > positions {
                return Err(Error::config(
                    "tokenizer.seq_len",
                    format!(
                        "{} tokens exceed the {positions} positions of `{size}` models",
                        self.tokenizer.seq_len
                    ),
                ));
            }
            if let Some(d) = f.datasets.iter().find(|d| d.max_length > positions) {
                return Err(Error::config(
                    "finetune.datasets",
                    format!(
                        "`{}`: max_length {} exceeds the {positions} positions of `{size}` models",
                        d.dataset, d.max_length
                    ),
                ));
            }
        }
        for (i, d) in f.datasets.iter().enumerate() {
            if f.datasets[..i].iter().any(|e| e.dataset == d.dataset) {
                return Err(Error::config(
                    "finetune.datasets",
                    format!(
                        "`{}` is listed twice: the analysis knows a dataset by its name, so give each one entry (its own learning_rates, steps and limits)",
                        d.dataset
                    ),
                ));
            }
            let lrs = d.lrs(f);
            if lrs.is_empty() || lrs.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(Error::config(
                    "finetune.datasets",
                    format!("`{}`: learning rates must be positive numbers, at least one", d.dataset),
                ));
            }
            if d.steps(f) == 0 {
                return Err(Error::config(
                    "finetune.datasets",
                    format!("`{}`: steps must be at least 1", d.dataset),
                ));
            }
        }
        if let Some(d) = f
            .ratio_datasets
            .iter()
            .find(|d| !f.datasets.iter().any(|e| e.dataset == **d))
        {
            return Err(Error::config(
                "finetune.ratio_datasets",
                format!(
                    "`{d}` is not a dataset of the grid; use some of {:?}",
                    f.datasets.iter().map(|e| e.dataset.as_str()).collect::<Vec<_>>()
                ),
            ));
        }
        if let Some(p) = &f.probe {
            if p.learning_rates.is_empty() || p.learning_rates.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(Error::config(
                    "finetune.probe.learning_rates",
                    "positive numbers, at least one",
                ));
            }
            if p.steps == Some(0) {
                return Err(Error::config("finetune.probe.steps", "must be at least 1"));
            }
        }
        if f.datasets.is_empty() || f.learning_rates.is_empty() || f.seeds.is_empty() {
            return Err(Error::config(
                "finetune",
                "needs at least one dataset, learning rate and seed",
            ));
        }
        if f.seeds.len() < 2 {
            return Err(Error::config(
                "finetune.seeds",
                "at least 2 seeds: every interval and test needs replicates",
            ));
        }
        if !(self.analysis.confidence > 0.0 && self.analysis.confidence < 1.0) {
            return Err(Error::config("analysis.confidence", "must be in (0, 1)"));
        }
        if !(self.analysis.alpha > 0.0 && self.analysis.alpha < 1.0) {
            return Err(Error::config("analysis.alpha", "must be in (0, 1)"));
        }
        Ok(())
    }
}
