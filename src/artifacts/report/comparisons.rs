//! Tables of comparisons between two systems: the tests per dataset, over datasets, over
//! the hierarchical design and over test instances, and the probability of improvement.

use serde::{Deserialize, Serialize};

use super::ReportRow;

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

/// `tests_datasets.csv`: per pair of systems, tests over the datasets' best-LR means (paired t,
/// Wilcoxon, sign test).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct DatasetTestRow {
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
    /// Mean of x minus mean of y.
    pub mean_diff: f64,
    /// Interval, low.
    pub ci_low: f64,
    /// … high.
    pub ci_high: f64,
    /// Paired t over datasets.
    pub ttest_t: f64,
    /// Its p-value.
    pub ttest_p: f64,
    /// Wilcoxon signed-rank p-value.
    pub wilcoxon_p: f64,
    /// Sign-test p-value.
    pub sign_p: f64,
    /// Paired t p, Holm-adjusted over the table.
    pub ttest_p_holm: f64,
    /// Paired t p, Benjamini-Hochberg-adjusted.
    pub ttest_p_bh: f64,
    /// Paired t degrees of freedom.
    pub ttest_df: f64,
    /// Wilcoxon's statistic.
    pub wilcoxon_stat: f64,
    /// `exact` or `asymptotic`.
    pub wilcoxon_method: String,
    /// Datasets where x beats y.
    pub sign_positive: usize,
    /// Datasets where y beats x.
    pub sign_negative: usize,
}

impl ReportRow for DatasetTestRow {
    const FILE: &'static str = "tests_datasets.csv";
}

/// `tests_hierarchical.csv`: per pair of systems, the hierarchical bootstrap of the difference over
/// datasets, pretraining seeds and fine-tuning seeds, beside the naive interval.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct HierarchicalTestRow {
    /// System x's model.
    pub model_x: String,
    /// System x's objective.
    pub objective_x: String,
    /// System y's model.
    pub model_y: String,
    /// System y's objective.
    pub objective_y: String,
    /// Whether datasets are resampled (`True`/`False`).
    pub dataset_bootstrap: String,
    /// The levels resampled, outermost first.
    pub levels: String,
    /// Datasets both systems have.
    pub n_datasets: usize,
    /// Most pretraining seeds of x on a dataset.
    pub n_pretrain_seeds_x: usize,
    /// … of y.
    pub n_pretrain_seeds_y: usize,
    /// Mean of x minus mean of y.
    pub mean_diff: f64,
    /// Bootstrap resamples.
    pub reps: usize,
    /// Percentile interval of the difference, low.
    pub percentile_low: f64,
    /// … high.
    pub percentile_high: f64,
    /// BCa interval, low.
    pub bca_low: f64,
    /// … high.
    pub bca_high: f64,
    /// Bootstrap p-value of no difference.
    pub p_boot: f64,
    /// Datasets with per-instance scores.
    pub instance_datasets: usize,
    /// Interval from runs as independent rows, low.
    pub naive_low: f64,
    /// … high.
    pub naive_high: f64,
}

impl ReportRow for HierarchicalTestRow {
    const FILE: &'static str = "tests_hierarchical.csv";
}

/// `instance_tests.csv`: per dataset and pair of systems, paired tests over the test instances.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct InstanceTestRow {
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
    /// Test instances both systems were scored on.
    pub n_instances: usize,
    /// `mean` (of per-instance scores) or `corpus_f1` (from summed counts).
    pub metric_kind: String,
    /// x's score over the instances (its seeds averaged).
    pub score_x: f64,
    /// y's.
    pub score_y: f64,
    /// Mean of x minus mean of y.
    pub mean_diff: f64,
    /// Bootstrap resamples.
    pub reps: usize,
    /// Interval, low.
    pub ci_low: f64,
    /// … high.
    pub ci_high: f64,
    /// Paired bootstrap p-value of no difference.
    pub p_boot: f64,
    /// One-sided bootstrap p-value of x not better than y.
    pub p_boot_x_better: f64,
    /// Paired t over instances.
    pub ttest_t: f64,
    /// Its p-value.
    pub ttest_p: f64,
    /// Its one-sided p-value of x not better than y.
    pub ttest_p_x_better: f64,
    /// Bootstrap p, Holm-adjusted over the table.
    pub p_boot_holm: f64,
    /// Bootstrap p, Benjamini-Hochberg-adjusted.
    pub p_boot_bh: f64,
}

impl ReportRow for InstanceTestRow {
    const FILE: &'static str = "instance_tests.csv";
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

/// `tests_interactions.csv`: per interaction asked for ((x1 − y1) − (x2 − y2), e.g. the masking
/// ratio's effect at two model sizes), its hierarchical bootstrap over the datasets all four
/// systems have.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct InteractionTestRow {
    /// The first difference's x: model.
    pub model_x1: String,
    /// … objective.
    pub objective_x1: String,
    /// The first difference's y: model.
    pub model_y1: String,
    /// … objective.
    pub objective_y1: String,
    /// The second difference's x: model.
    pub model_x2: String,
    /// … objective.
    pub objective_x2: String,
    /// The second difference's y: model.
    pub model_y2: String,
    /// … objective.
    pub objective_y2: String,
    /// Whether datasets are resampled (`True`/`False`).
    pub dataset_bootstrap: String,
    /// The levels resampled, outermost first.
    pub levels: String,
    /// Datasets all four systems have.
    pub n_datasets: usize,
    /// Datasets with per-instance scores.
    pub instance_datasets: usize,
    /// The difference of differences.
    pub interaction: f64,
    /// Bootstrap resamples.
    pub reps: usize,
    /// Percentile interval, low.
    pub percentile_low: f64,
    /// … high.
    pub percentile_high: f64,
    /// BCa interval, low.
    pub bca_low: f64,
    /// … high.
    pub bca_high: f64,
    /// Bootstrap p-value of no interaction.
    pub p_boot: f64,
}

impl ReportRow for InteractionTestRow {
    const FILE: &'static str = "tests_interactions.csv";
}
