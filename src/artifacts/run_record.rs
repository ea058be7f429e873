//! What a fine-tuning run leaves in its record folder besides its config: `result.json`
//! ([`RunResult`]) and `instances.jsonl` (one [`InstanceRow`] per line). Fine-tuning writes them;
//! sweeps, the study, the analysis and notebooks read them.

use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Trained and evaluated.
    Ok,
    /// A non-finite loss or gradient stopped it.
    Diverged,
    /// Something else stopped it (see `reason`).
    Failed,
}

impl Status {
    /// `ok`, `diverged` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
        }
    }
}

/// `result.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Hash of the resolved configuration.
    pub run_id: String,
    /// The backbone's name.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// SC, TC, QA or IR.
    pub family: String,
    /// Registry name.
    pub dataset: String,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// The backbone's pretraining seed (0 in records written before the column existed).
    #[serde(default)]
    pub pretrain_seed: i64,
    /// Fine-tuning seed.
    pub seed: u64,
    /// The reported metric.
    pub metric: String,
    /// Its validation score (NaN unless `ok`; written as null).
    pub validation: Option<f64>,
    /// Its test score.
    pub test: Option<f64>,
    /// Every metric of each split: (split, metric, score).
    pub all_scores: Vec<(String, String, f64)>,
    /// ok | diverged | failed.
    pub status: Status,
    /// Why it did not end `ok`.
    pub reason: Option<String>,
    /// Optimizer steps done.
    pub steps: usize,
    /// Training examples seen.
    pub examples: usize,
    /// Training examples per second.
    pub train_examples_per_s: f64,
    /// Evaluation instances per second (both splits).
    pub eval_examples_per_s: f64,
    /// Wall time of the whole run.
    pub wall_seconds: f64,
}

/// One line of `instances.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct InstanceRow {
    /// validation or test.
    pub split: String,
    /// The metric.
    pub metric: String,
    /// The instance's id.
    pub id: String,
    /// Its score.
    pub score: f64,
    /// For F1 metrics: (tp, predicted, gold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<crate::eval::Counts>,
}
