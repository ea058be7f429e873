//! Tables about the design itself: where the spread comes from, and what it can detect.

use serde::{Deserialize, Serialize};

use super::ReportRow;

/// `power.csv`: per pair of systems, what the dataset-level design can detect and what it
/// would take to detect the effect.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct PowerRow {
    /// System x's model.
    pub model_x: String,
    /// System x's objective.
    pub objective_x: String,
    /// System y's model.
    pub model_y: String,
    /// System y's objective.
    pub objective_y: String,
    /// Datasets both systems have.
    pub n_datasets: usize,
    /// Pretraining seeds per system (the mean over datasets).
    pub n_pretrain_seeds: f64,
    /// Fine-tuning seeds per pretraining seed (the mean).
    pub n_finetune_seeds: f64,
    /// Mean over datasets of the difference x − y.
    pub observed_diff: f64,
    /// The effect powered for (the observed one, or the one asked).
    pub effect: f64,
    /// Standard deviation of the per-dataset differences.
    pub sd_diff: f64,
    /// Of its variance, the part between datasets (τ²).
    pub var_datasets: f64,
    /// … the part the seeds put in.
    pub var_seeds: f64,
    /// Power of the dataset-level paired t-test to detect `effect`.
    pub power: f64,
    /// Smallest effect detected with 80 % power.
    pub mde: f64,
    /// Datasets needed for 80 % power at these seeds.
    pub datasets_needed: f64,
    /// Pretraining seeds needed at these datasets (NaN: fewer than 2 datasets).
    pub pretrain_seeds_needed: f64,
    /// Fine-tuning seeds needed likewise.
    pub finetune_seeds_needed: f64,
}

impl ReportRow for PowerRow {
    const FILE: &'static str = "power.csv";
}

/// `variance_components.csv`: per (system, dataset), where the spread of the scores comes from:
/// learning rate, pretraining seed, fine-tuning seed, test sampling.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct VarianceRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// The split.
    pub split: String,
    /// Learning rates.
    pub n_lr: usize,
    /// Most pretraining seeds at a learning rate.
    pub n_pretrain_seeds: usize,
    /// Mean fine-tuning seeds per pretraining seed.
    pub n_finetune_seeds: f64,
    /// Variance from the learning rate.
    pub var_lr: f64,
    /// … from the pretraining seed.
    pub var_pretrain_seed: f64,
    /// … from the fine-tuning seed.
    pub var_finetune_seed: f64,
    /// … from the sampling of the test set (NaN without instances).
    pub var_test_sampling: f64,
    /// Share of the total from the learning rate.
    pub share_lr: f64,
    /// … from the pretraining seed.
    pub share_pretrain_seed: f64,
    /// … from the fine-tuning seed.
    pub share_finetune_seed: f64,
    /// … from test sampling.
    pub share_test_sampling: f64,
}

impl ReportRow for VarianceRow {
    const FILE: &'static str = "variance_components.csv";
}
