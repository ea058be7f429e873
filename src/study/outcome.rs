//! What one call of the study did: its stages' seconds and run counts (printed, appended to
//! `timings.jsonl` and shown in the report).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Seconds of each stage of one call.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct StageSeconds {
    /// Fetching, tokenizer training and packing.
    pub data: f64,
    /// Every pretraining arm.
    pub pretrain: f64,
    /// The fine-tuning grid.
    pub finetune: f64,
    /// Runs table, analysis report, findings and `REPORT.md`.
    pub analysis: f64,
    /// The whole call.
    pub total: f64,
}

/// What a call did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StudyOutcome {
    /// Wall seconds of this call, by stage.
    pub seconds: StageSeconds,
    /// Pretraining runs done by this call (others were already complete).
    pub pretrain_runs_started: usize,
    /// Arms that diverged or could not start (their models are left out of the grid).
    pub arms_failed: Vec<String>,
    /// Fine-tuning runs in the grid.
    pub finetune_runs: usize,
    /// Of those, started by this call.
    pub finetune_runs_started: usize,
    /// Runs recorded failed.
    pub finetune_failed: usize,
    /// Runs recorded diverged.
    pub finetune_diverged: usize,
    /// The report.
    pub report: PathBuf,
}
