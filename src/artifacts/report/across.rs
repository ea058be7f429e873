//! Tables across datasets: ranks, aggregates, performance profiles and ranking clusters.

use serde::{Deserialize, Serialize};

use super::ReportRow;

/// `ranks.csv`: per (system, dataset), the rank of the best-LR mean, the mean rank and the
/// Friedman test over datasets.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct RankRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// Best-LR mean on the report split.
    pub best_mean: f64,
    /// Rank on the dataset (1 = best; ties averaged).
    pub rank: f64,
    /// Mean rank over datasets.
    pub mean_rank: f64,
    /// Friedman's χ² over datasets.
    pub friedman_chi2: f64,
    /// Its p-value.
    pub friedman_p: f64,
}

impl ReportRow for RankRow {
    const FILE: &'static str = "ranks.csv";
}

/// `aggregate.csv`: per system, aggregates of the normalised scores across datasets with
/// stratified-bootstrap intervals.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct AggregateRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// `mean`, `median`, `iqm` or `optimality_gap`.
    pub aggregate: String,
    /// Whether tasks are resampled too (`True`/`False`).
    pub task_bootstrap: String,
    /// Runs aggregated.
    pub n_runs: usize,
    /// Datasets aggregated.
    pub n_tasks: usize,
    /// The point estimate.
    pub estimate: f64,
    /// Bootstrap resamples.
    pub reps: usize,
    /// Interval, low.
    pub ci_low: f64,
    /// … high.
    pub ci_high: f64,
}

impl ReportRow for AggregateRow {
    const FILE: &'static str = "aggregate.csv";
}

/// `aggregate_hierarchical.csv`: per system, aggregates across datasets with hierarchical-bootstrap
/// intervals (datasets, pretraining seeds, fine-tuning seeds).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct HierarchicalAggregateRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// `mean`, `median`, `iqm` or `optimality_gap`.
    pub aggregate: String,
    /// Whether datasets are resampled (`True`/`False`).
    pub dataset_bootstrap: String,
    /// The levels resampled, outermost first.
    pub levels: String,
    /// Datasets aggregated.
    pub n_datasets: usize,
    /// Most pretraining seeds on a dataset.
    pub n_pretrain_seeds: usize,
    /// The aggregate.
    pub estimate: f64,
    /// Bootstrap resamples.
    pub reps: usize,
    /// Interval, low.
    pub ci_low: f64,
    /// … high.
    pub ci_high: f64,
}

impl ReportRow for HierarchicalAggregateRow {
    const FILE: &'static str = "aggregate_hierarchical.csv";
}

/// `performance_profile.csv`: per system and threshold τ, the share of normalised scores above τ
/// with a stratified-bootstrap interval (a performance profile).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ProfileRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The threshold on the normalised score.
    pub tau: f64,
    /// Share of (dataset, run) scores above it.
    pub fraction_above: f64,
    /// Bootstrap resamples.
    pub reps: usize,
    /// Interval, low.
    pub ci_low: f64,
    /// … high.
    pub ci_high: f64,
}

impl ReportRow for ProfileRow {
    const FILE: &'static str = "performance_profile.csv";
}

/// `ranking_clusters.csv`: per dataset, systems ranked into clusters no test tells apart.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct RankingClusterRow {
    /// The dataset.
    pub dataset: String,
    /// Its cluster (systems not told apart share one).
    pub cluster: usize,
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// Its score.
    pub score: f64,
    /// The test separating clusters.
    pub test: String,
    /// The smallest p-value between it and the next cluster.
    pub min_p: f64,
}

impl ReportRow for RankingClusterRow {
    const FILE: &'static str = "ranking_clusters.csv";
}
