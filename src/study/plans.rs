//! The sections of a study file that plan the runs: the tokenizer, the pretraining arms, and
//! the fine-tuning grid (its datasets, learning rates, budgets and the linear probe).

use serde::{Deserialize, Serialize};

use crate::heads::Pooling;
use crate::model::AttentionMode;
use crate::train::Precision;

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
