//! Per (system, dataset) tables: descriptive statistics, the learning rate chosen, expected
//! max, bootstrap intervals, the runs a design lacks, the runs without per-instance scores.

use serde::{Deserialize, Serialize};

use super::ReportRow;

/// `group_stats.csv`: per (system, dataset, learning rate, split), descriptive statistics of the
/// runs and their failures.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct GroupStatsRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// The fine-tuning learning rate.
    pub learning_rate: f64,
    /// The split.
    pub split: String,
    /// Runs in the group.
    pub n_runs: u64,
    /// Of those, with no score (NaN).
    pub n_nan: usize,
    /// Of those, with a score.
    pub n_valid: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Standard error of the mean.
    pub sem: f64,
    /// Median.
    pub median: f64,
    /// First quartile.
    pub q25: f64,
    /// Third quartile.
    pub q75: f64,
    /// Interquartile mean.
    pub iqm: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Student-t interval of the mean, low.
    pub t_ci_low: f64,
    /// … high.
    pub t_ci_high: f64,
    /// Failed runs (no score, or at most the chance score).
    pub failed_count: u64,
    /// Their share.
    pub failed_rate: f64,
    /// Wilson interval of the failure rate, low.
    pub failed_wilson_low: f64,
    /// … high.
    pub failed_wilson_high: f64,
}

impl ReportRow for GroupStatsRow {
    const FILE: &'static str = "group_stats.csv";
}

/// `best_lr.csv`: per (system, dataset), the learning rate chosen on the selection split and
/// the scores at it on the report split, with the sensitivity to the learning rate and seed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct BestLrRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// Where the learning rate is chosen.
    pub select_split: String,
    /// Where the scores are reported.
    pub report_split: String,
    /// Learning rates tried.
    pub n_lr: usize,
    /// The chosen learning rate (NaN: none).
    pub best_lr: f64,
    /// Its mean on the selection split.
    pub sel_mean_at_best: f64,
    /// Mean on the report split at the chosen learning rate.
    pub best_mean: f64,
    /// Their sample standard deviation.
    pub best_std: f64,
    /// Their standard error.
    pub best_sem: f64,
    /// Replicates at the chosen learning rate.
    pub best_n: usize,
    /// Student-t interval of the mean, low.
    pub best_t_ci_low: f64,
    /// … high.
    pub best_t_ci_high: f64,
    /// Range of the seed means over learning rates.
    pub lr_range: f64,
    /// Their standard deviation.
    pub lr_std: f64,
    /// Mean best-LR score minus the mean over learning rates.
    pub lr_regret: f64,
    /// The same over (best − chance).
    pub lr_regret_norm: f64,
    /// Mean over learning rates of the spread over seeds.
    pub seed_std_mean: f64,
    /// The pooled spread over seeds.
    pub seed_std_pooled: f64,
    /// Share of failed runs over every learning rate.
    pub failed_rate_all_lr: f64,
}

impl ReportRow for BestLrRow {
    const FILE: &'static str = "best_lr.csv";
}

/// `expected_max.csv`: per (system, dataset), the expected best score of n trials on the
/// selection split, over every run and over the seeds at the chosen learning rate.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ExpectedMaxRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// The split.
    pub split: String,
    /// `all_runs` (every learning rate and seed) or `seeds_at_best_lr`.
    pub budget: String,
    /// Trials observed.
    #[serde(rename = "N")]
    pub n_trials: usize,
    /// Trials drawn (the budget).
    pub n: usize,
    /// Expected best score of n trials drawn with replacement.
    pub expected_max: f64,
    /// Its standard deviation.
    pub sd: f64,
}

impl ReportRow for ExpectedMaxRow {
    const FILE: &'static str = "expected_max.csv";
}

/// `bootstrap_ci.csv`: per (system, dataset), bootstrap intervals of the best-LR mean by method.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct BootstrapRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// `percentile`, `basic` or `bca`.
    pub method: String,
    /// The bootstrapped statistic (`mean`).
    pub statistic: String,
    /// Replicates.
    pub n: usize,
    /// The point estimate.
    pub estimate: f64,
    /// The intervals' level.
    pub confidence_level: f64,
    /// Bootstrap resamples.
    pub n_resamples: usize,
    /// Interval, low.
    pub ci_low: f64,
    /// … high.
    pub ci_high: f64,
}

impl ReportRow for BootstrapRow {
    const FILE: &'static str = "bootstrap_ci.csv";
}

/// `missing_runs.csv`: every (pretraining seed, seed) a group lacks that its system was run at.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MissingRunRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// The split.
    pub split: String,
    /// The fine-tuning learning rate.
    pub learning_rate: f64,
    /// The missing run's pretraining seed.
    pub pretrain_seed: i64,
    /// Its fine-tuning seed.
    pub seed: i64,
}

impl ReportRow for MissingRunRow {
    const FILE: &'static str = "missing_runs.csv";
}

/// `instances_missing.csv`: every run that ended `ok` without per-instance scores on a dataset
/// where other runs have them (the dataset is then resampled at run level only).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct InstanceMissingRow {
    /// The pretrained model.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// The dataset.
    pub dataset: String,
    /// The fine-tuning learning rate (the selected one).
    pub learning_rate: f64,
    /// The run's pretraining seed.
    pub pretrain_seed: i64,
    /// Its fine-tuning seed.
    pub seed: i64,
    /// The report split.
    pub split: String,
}

impl ReportRow for InstanceMissingRow {
    const FILE: &'static str = "instances_missing.csv";
}
