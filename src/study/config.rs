//! A study's configuration (`configs/study/*.toml`): the data, the tokenizer, the pretraining
//! arms at one step budget, the fine-tuning grid and the analysis settings. Three presets are
//! built in (`demo`, `standard`, `paper`); any file with the same fields is a study too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::heads::Pooling;
use crate::model::{AttentionMode, ModelConfig};
use crate::stats::report::NanPolicy;
use crate::train::Precision;

/// The built-in presets, by name.
pub const PRESETS: [(&str, &str); 3] = [
    ("demo", include_str!("../../configs/study/demo.toml")),
    ("standard", include_str!("../../configs/study/standard.toml")),
    ("paper", include_str!("../../configs/study/paper.toml")),
];

/// Tokenizer and blocks.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenizerPlan {
    /// Byte-level BPE vocabulary, special tokens included.
    pub vocab_size: usize,
    /// Tokens per pretraining block.
    pub seq_len: usize,
    /// The pretraining text: registry datasets of the `pretraining` family.
    pub datasets: Vec<String>,
}

/// The pretraining arms, all at `steps` optimizer steps of `batch_size` blocks.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PretrainPlan {
    /// Model preset of every arm (`tiny`, `small`, `210m`, `610m`, `1b`).
    pub size: String,
    /// The budget of every arm, in optimizer steps.
    pub steps: usize,
    /// Blocks per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (a step sees batch_size × grad_accum blocks).
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// Peak learning rate.
    pub peak_lr: f64,
    /// The peak learning rate of F6's other sizes, by size (`{ mini = 3e-3 }`; default:
    /// `peak_lr`): a deeper, wider model that stalls at the main size's rate gets its own.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub size_peak_lr: std::collections::BTreeMap<String, f64>,
    /// Linear warmup steps.
    pub warmup_steps: usize,
    /// The warmup–stable–decay schedule's final linear decay, in steps.
    pub decay_steps: usize,
    /// Pretraining seeds: every arm is trained once per seed, and the analysis treats the runs
    /// as replicates (default: the study's `seed` alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
    /// Masking ratio of the MLM arms the findings F1–F5 compare (the paper: 0.4).
    pub mlm_ratio: f64,
    /// More 100 % MLM arms at these ratios (F6).
    #[serde(default)]
    pub other_ratios: Vec<f64>,
    /// More model sizes trained with 100 % MLM at every ratio (F6: does the best ratio depend
    /// on size?).
    #[serde(default)]
    pub ratio_sizes: Vec<String>,
    /// Biphasic arms: the share of the steps done with CLM before switching to MLM (F4).
    pub clm_shares: Vec<f64>,
    /// Steps of the CLM and MLM runs whose (undecayed) checkpoints are kept and fine-tuned (F2).
    pub intermediate: Vec<usize>,
    /// The pretraining seeds whose runs keep (and fine-tune) the `intermediate` checkpoints
    /// (default: every seed): F2's curves at one seed cost a fraction of all seeds'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intermediate_seeds: Vec<u64>,
    /// The pretraining seeds at which F6's arms run (the other ratios, and every ratio at the
    /// other sizes, with those sizes' random-init baselines); default: every seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratio_seeds: Vec<u64>,
    /// Extra MLM steps from the decayed CLM and MLM checkpoints (F5); 0: no such arms.
    pub continued_steps: usize,
    /// Held-out losses every this many steps.
    pub eval_every_steps: usize,
    /// Runs at once (processes of the `encoderlab` binary, the cores shared among them): a
    /// small model uses two cores little better than one, so two single-threaded runs finish
    /// the arms about twice as fast. 1: one run after another in the study's process.
    #[serde(default = "one")]
    pub workers: usize,
    /// `cpu` or `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
    /// Compute dtype of the pretraining runs (`f32`, or `bf16` on GPUs).
    #[serde(default)]
    pub dtype: Precision,
}

fn cpu() -> String {
    "cpu".into()
}

fn one() -> usize {
    1
}

/// One fine-tuning dataset of the grid.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetPlan {
    /// Registry name.
    pub dataset: String,
    /// Longest input in tokens.
    pub max_length: usize,
    /// Retrieval: where the training pairs come from (see `task.train_pairs`).
    #[serde(default)]
    pub train_pairs: Option<String>,
    /// Passes over the training set instead of the grid's steps (the paper: 1 for token
    /// classification).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// This dataset's learning rates (default: the grid's `learning_rates`): a grid wide
    /// enough that the selected rate falls inside it, not at an edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rates: Option<Vec<f64>>,
    /// This dataset's optimizer steps (default: the grid's `steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Use only the first N training examples of this dataset (default: the grid's
    /// `max_train_examples`; 0: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_train_examples: Option<usize>,
    /// Score only the first N examples of each evaluation split (default: the grid's
    /// `max_eval_examples`; 0: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_eval_examples: Option<usize>,
}

impl DatasetPlan {
    /// The learning rates of this dataset's runs, ascending.
    pub fn lrs(&self, grid: &FinetunePlan) -> Vec<f64> {
        let mut v = self
            .learning_rates
            .clone()
            .unwrap_or_else(|| grid.learning_rates.clone());
        v.sort_by(|a, b| a.total_cmp(b));
        v.dedup();
        v
    }

    /// Optimizer steps of this dataset's runs.
    pub fn steps(&self, grid: &FinetunePlan) -> usize {
        self.steps.unwrap_or(grid.steps)
    }

    /// Training examples used (0: all).
    pub fn train_examples(&self, grid: &FinetunePlan) -> usize {
        self.max_train_examples.unwrap_or(grid.max_train_examples)
    }

    /// Evaluation examples scored per split (0: all).
    pub fn eval_examples(&self, grid: &FinetunePlan) -> usize {
        self.max_eval_examples.unwrap_or(grid.max_eval_examples)
    }

    /// Its runs in words: `bbc_news: LR {1e-3, 3e-3}, 150 steps, trained on …, scored on …`.
    pub fn describe(&self, grid: &FinetunePlan) -> String {
        format!(
            "{}: LR {{{}}}, {}, trained on {}, scored on {}",
            self.dataset,
            self.lrs(grid)
                .iter()
                .map(|x| format!("{x:e}"))
                .collect::<Vec<_>>()
                .join(", "),
            match self.epochs {
                Some(e) => format!("{e} epoch(s)"),
                None => format!("{} steps of {}", self.steps(grid), grid.batch_size),
            },
            match self.train_examples(grid) {
                0 => "the whole training split".to_string(),
                n => format!("its first {n} training examples"),
            },
            match self.eval_examples(grid) {
                0 => "the whole validation and test splits".to_string(),
                n => format!("the first {n} examples (queries) of each split"),
            },
        )
    }
}

/// The fine-tuning grid: every checkpoint × dataset × learning rate × seed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FinetunePlan {
    /// The datasets.
    pub datasets: Vec<DatasetPlan>,
    /// The learning rates (the paper's six).
    pub learning_rates: Vec<f64>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Optimizer steps of a run (the paper: 1000).
    pub steps: usize,
    /// Examples per step (the paper: 32).
    pub batch_size: usize,
    /// Use only the first N training examples (0: all).
    #[serde(default)]
    pub max_train_examples: usize,
    /// Score only the first N examples (queries) of each evaluation split (0: all).
    #[serde(default)]
    pub max_eval_examples: usize,
    /// Attention while fine-tuning.
    #[serde(default = "bidirectional")]
    pub attention: AttentionMode,
    /// Pooling of the sequence classifier.
    #[serde(default)]
    pub pooling: Pooling,
    /// The datasets F6's models (the other masking ratios, every model of the other sizes and
    /// their random-init baselines) are fine-tuned on, by name (default: all): F6 at a larger
    /// size costs its fine-tuning several times over, so a study can test it on a subset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratio_datasets: Vec<String>,
    /// A linear probe beside full fine-tuning: every model's frozen features with a trained
    /// head, on the sequence- and token-classification datasets (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbePlan>,
    /// Runs at once (local processes).
    pub workers: usize,
    /// `cpu` or `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
}

/// The linear probe's grid (its seeds are the grid's).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbePlan {
    /// Learning rates of the head (a probe wants larger ones than full fine-tuning).
    pub learning_rates: Vec<f64>,
    /// Optimizer steps (default: the grid's).
    #[serde(default)]
    pub steps: Option<usize>,
}

impl FinetunePlan {
    /// The datasets a model is fine-tuned on: all, or for one of F6's models (`f6`) those of
    /// `ratio_datasets`.
    pub fn datasets_for(&self, f6: bool) -> impl Iterator<Item = &DatasetPlan> {
        self.datasets
            .iter()
            .filter(move |d| !f6 || self.ratio_datasets.is_empty() || self.ratio_datasets.contains(&d.dataset))
    }

    /// Fine-tuning runs of one model (`f6`: one of F6's): Σ over its datasets of their
    /// learning rates × the seeds.
    pub fn runs_per_model(&self, f6: bool) -> usize {
        self.datasets_for(f6).map(|d| d.lrs(self).len()).sum::<usize>() * self.seeds.len()
    }

    /// Optimizer steps of one model's runs, summed (runs with `epochs` counted at `steps`).
    pub fn steps_per_model(&self, f6: bool) -> usize {
        self.datasets_for(f6)
            .map(|d| d.lrs(self).len() * d.steps(self))
            .sum::<usize>()
            * self.seeds.len()
    }
}

fn bidirectional() -> AttentionMode {
    AttentionMode::Bidirectional
}

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
    /// Slurm partition of the sweep.
    #[serde(default)]
    pub partition: Option<String>,
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
