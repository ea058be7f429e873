//! The rows of the analysis report's CSV files (`analysis report`, the study's `analysis/`):
//! one struct per file, its fields the columns in order. The report builds its tables from
//! these rows; the `analysis` command line, the plots and the tests read them back by field.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A row of one of the report's files.
pub trait ReportRow: Serialize + DeserializeOwned + Default {
    /// The file's name.
    const FILE: &'static str;
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

/// `tests_unpaired.csv`: per dataset and pair of systems, Welch's t-test and the
/// Mann-Whitney U test over their best-LR replicates, with Holm and BH adjustments.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct UnpairedTestRow {
    /// The dataset.
    pub dataset: String,
    /// System x's model.
    pub model_x: String,
    /// System x's objective.
    pub objective_x: String,
    /// System y's model.
    pub model_y: String,
    /// System y's objective.
    pub objective_y: String,
    /// Replicates of x.
    pub n_x: usize,
    /// Replicates of y.
    pub n_y: usize,
    /// Welch's t (x − y, in the metric's better direction).
    pub welch_t: f64,
    /// Its degrees of freedom.
    pub welch_df: f64,
    /// Its p-value.
    pub welch_p: f64,
    /// Mean of x minus mean of y.
    pub mean_diff: f64,
    /// Welch interval of the difference, low.
    pub welch_ci_low: f64,
    /// … high.
    pub welch_ci_high: f64,
    /// Mann-Whitney U of x.
    pub mwu_u1: f64,
    /// Its p-value.
    pub mwu_p: f64,
    /// `exact` or `asymptotic`.
    pub mwu_method: String,
    /// P(x > y), U₁ / (n_x · n_y).
    pub poi_x_gt_y: f64,
    /// Welch p, Holm-adjusted over the table.
    pub welch_p_holm: f64,
    /// Welch p, Benjamini-Hochberg-adjusted.
    pub welch_p_bh: f64,
    /// Mann-Whitney p, Holm-adjusted.
    pub mwu_p_holm: f64,
    /// Mann-Whitney p, Benjamini-Hochberg-adjusted.
    pub mwu_p_bh: f64,
}

impl ReportRow for UnpairedTestRow {
    const FILE: &'static str = "tests_unpaired.csv";
}

/// `tests_paired.csv`: per pair of systems, the paired t-test and Wilcoxon's signed-rank test
/// over (dataset, seed) units and over datasets, with Holm and BH adjustments.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct PairedTestRow {
    /// `dataset_seed` or `dataset`.
    pub level: String,
    /// System x's model.
    pub model_x: String,
    /// System x's objective.
    pub objective_x: String,
    /// System y's model.
    pub model_y: String,
    /// System y's objective.
    pub objective_y: String,
    /// Pairs.
    pub n_pairs: usize,
    /// Mean of x − y.
    pub mean_diff: f64,
    /// Paired t.
    pub ttest_rel_t: f64,
    /// Its degrees of freedom.
    pub ttest_rel_df: f64,
    /// Its p-value.
    pub ttest_rel_p: f64,
    /// Its interval of the mean difference, low.
    pub ttest_rel_ci_low: f64,
    /// … high.
    pub ttest_rel_ci_high: f64,
    /// Wilcoxon's statistic.
    pub wilcoxon_stat: f64,
    /// Sum of positive ranks.
    pub wilcoxon_r_plus: f64,
    /// Sum of negative ranks.
    pub wilcoxon_r_minus: f64,
    /// Its p-value.
    pub wilcoxon_p: f64,
    /// `exact` or `asymptotic`.
    pub wilcoxon_method: String,
    /// Paired t p, Holm-adjusted over the table.
    pub ttest_rel_p_holm: f64,
    /// Paired t p, Benjamini-Hochberg-adjusted.
    pub ttest_rel_p_bh: f64,
    /// Wilcoxon p, Holm-adjusted.
    pub wilcoxon_p_holm: f64,
    /// Wilcoxon p, Benjamini-Hochberg-adjusted.
    pub wilcoxon_p_bh: f64,
}

impl ReportRow for PairedTestRow {
    const FILE: &'static str = "tests_paired.csv";
}

/// `poi.csv`: per pair of systems, the probability of improvement across datasets with its
/// stratified-bootstrap interval.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct PoiRow {
    /// System x's model.
    pub model_x: String,
    /// System x's objective.
    pub objective_x: String,
    /// System y's model.
    pub model_y: String,
    /// System y's objective.
    pub objective_y: String,
    /// P(x > y) over the datasets both have.
    pub poi: f64,
    /// Bootstrap resamples.
    pub reps: usize,
    /// Percentile interval, low.
    pub ci_low: f64,
    /// … high.
    pub ci_high: f64,
}

impl ReportRow for PoiRow {
    const FILE: &'static str = "poi.csv";
}
