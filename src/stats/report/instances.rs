//! Tables over test instances, written when per-instance scores are given (`analysis report
//! --instances`; empty otherwise). `instance_tests.csv`: within each dataset, each pair of
//! systems compared over the test set (Koehn 2004's paired bootstrap over instances, and the
//! paired t-test over instances where the metric is a mean), every replicate at the selected
//! learning rate kept as it is. `ranking_clusters.csv`: the confidence-aware ranking of the
//! paper's evaluation code (EncodEval `system_ranking.py`): systems in order of score, a system
//! starting a new cluster only when some member of the current cluster beats it by a
//! one-sided paired test at 0.05 — clusters of systems the test set cannot tell apart.

use rayon::prelude::*;

use super::comparisons::{adjust_rows, system_pairs};
use super::design::{dataset_runs, DatasetRuns};
use super::rng_for;
use super::{ReportConfig, RunsIndex, Table};
use crate::artifacts::report::{InstanceTestRow, RankingClusterRow};
use crate::error::Result;
use crate::rng::Fast;
use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::describe::{mean, t_sf};
use crate::stats::hierarchical::{draw_weights, nested_mean, HierarchicalBootstrap, Levels, Nested, NestedIx};
use crate::stats::instances::{weighted_sum, InstanceValues};
use crate::stats::ttest::paired;

/// The significance level of the ranking's one-sided tests (EncodEval's `threshold_p_value`).
pub const RANKING_ALPHA: f64 = 0.05;

/// One system on one dataset, at the instance level: its score (raw metric scale: the mean
/// over pretraining seeds of the mean over fine-tuning seeds of its runs' scores), its
/// per-instance profile where the metric is a mean (the same average taken instance by
/// instance), and its runs' positions in the dataset's stratum.
#[derive(Debug, Clone)]
pub struct InstanceProfile {
    /// The system's score.
    pub score: f64,
    /// Per instance, the nested mean of its runs' scores on it (`None` for a corpus F1).
    pub profile: Option<Vec<f64>>,
    /// Its runs by pretraining seed.
    pub runs: NestedIx,
}

/// The instance-level view of one dataset.
#[derive(Debug, Clone)]
pub struct InstanceView<'a> {
    /// Each run's values (`None`: a failed run imputed with chance, at chance on every
    /// resample), aligned with the dataset's stratum.
    pub values: Vec<Option<&'a InstanceValues>>,
    /// Each system's profile (`None`: no runs here).
    pub profiles: Vec<Option<InstanceProfile>>,
    /// Whether the metric is a mean of instance scores (else a corpus F1).
    pub is_mean: bool,
}

/// The [`InstanceView`] of a dataset's runs; `None` when the dataset has no instance level.
pub fn instance_profiles<'a>(runs: &DatasetRuns<'a>) -> Option<InstanceView<'a>> {
    let level = runs.stratum.instances.as_ref()?;
    let values = level.runs.clone();
    let is_mean = values.iter().flatten().all(|v| matches!(v, InstanceValues::Mean(_)));
    // back to the raw scale: raw = (normalised − shift) / scale
    let raw = |normalised: f64| (normalised - level.shift) / level.scale;
    let n = values.iter().flatten().next().map_or(0, |v| v.len());
    let profiles = runs
        .systems
        .iter()
        .map(|nested| {
            let nested = nested.as_ref()?;
            let scores: Nested = nested
                .iter()
                .map(|r| r.iter().map(|&k| raw(runs.stratum.scores[k as usize])).collect())
                .collect();
            let profile = is_mean.then(|| {
                (0..n)
                    .map(|i| {
                        let per_run = |k: u32| match values[k as usize] {
                            Some(InstanceValues::Mean(v)) => v[i],
                            _ => raw(runs.stratum.scores[k as usize]),
                        };
                        mean(
                            &nested
                                .iter()
                                .map(|r| mean(&r.iter().map(|&k| per_run(k)).collect::<Vec<_>>()))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect()
            });
            Some(InstanceProfile {
                score: nested_mean(&scores),
                profile,
                runs: nested.clone(),
            })
        })
        .collect();
    Some(InstanceView {
        values,
        profiles,
        is_mean,
    })
}

/// `reps` resamples of the test instances of one dataset, shared by every system: per
/// replicate, each system's score (raw scale) on the resample, its runs kept as they are.
fn instance_resamples(
    values: &[Option<&InstanceValues>],
    fixed: &[f64],
    profiles: &[Option<InstanceProfile>],
    reps: usize,
    rng: &mut Fast,
) -> Vec<Vec<f64>> {
    let n = values.iter().flatten().next().map_or(0, |v| v.len());
    let mut weights = Vec::new();
    let mut out = vec![Vec::with_capacity(reps); profiles.len()];
    for _ in 0..reps {
        draw_weights(n, &mut weights, rng);
        let total: f64 = weights.iter().sum();
        // a mean metric's system score is linear in the instances: its profile's weighted mean
        // (one dot product per system, not one per run); a corpus F1 needs every run's
        let run_scores: Vec<f64> = if profiles.iter().flatten().all(|p| p.profile.is_some()) {
            Vec::new()
        } else {
            values
                .iter()
                .zip(fixed)
                .map(|(v, &f)| v.map_or(f, |v| v.weighted_with_total(&weights, total)))
                .collect()
        };
        for (s, p) in profiles.iter().enumerate() {
            let Some(p) = p else { continue };
            let score = match &p.profile {
                Some(profile) => weighted_sum(profile, &weights) / total,
                None => {
                    let nested: Nested = p
                        .runs
                        .iter()
                        .map(|r| r.iter().map(|&k| run_scores[k as usize]).collect())
                        .collect();
                    nested_mean(&nested)
                }
            };
            out[s].push(score);
        }
    }
    out
}

/// Two systems compared over the test instances of one dataset (raw metric scale, x − y;
/// "better" in the metric's direction).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceComparison {
    /// Dataset index.
    pub dataset: usize,
    /// System indices.
    pub x: usize,
    /// See `x`.
    pub y: usize,
    /// Test instances.
    pub n_instances: usize,
    /// Whether the metric is a mean of instance scores (else a corpus F1).
    pub is_mean: bool,
    /// The systems' scores.
    pub score_x: f64,
    /// See `score_x`.
    pub score_y: f64,
    /// The paired bootstrap over instances: the difference's resamples.
    pub bootstrap: HierarchicalBootstrap,
    /// One-sided bootstrap p of x better than y, (#{not better} + 1) / (B + 1).
    pub p_boot_x_better: f64,
    /// The same for y better than x.
    pub p_boot_y_better: f64,
    /// The paired t-test over instance profiles (NaN for a corpus F1).
    pub ttest: crate::stats::ttest::TTest,
    /// One-sided t p of x better than y, and of y better than x.
    pub ttest_p_x_better: f64,
    /// See `ttest_p_x_better`.
    pub ttest_p_y_better: f64,
}

impl InstanceComparison {
    /// The one-sided p-value of `better` (x or y) beating the other, by the ranking's test: the
    /// t-test where the metric is a mean (as EncodEval), else the bootstrap.
    pub fn p_better(&self, x_better: bool) -> f64 {
        match (self.is_mean, x_better) {
            (true, true) => self.ttest_p_x_better,
            (true, false) => self.ttest_p_y_better,
            (false, true) => self.p_boot_x_better,
            (false, false) => self.p_boot_y_better,
        }
    }
}

/// Every pair of systems on every dataset with per-instance scores, compared over its test
/// instances: the paired bootstrap (`reps` = the report's `poi_reps`, the count of every
/// pairwise resampling table, one
/// resample shared by all systems of the dataset, runs kept as they are) and, for a metric
/// that is a mean, the paired t-test over the instances' profiles (scipy `ttest_rel`).
/// Without `bootstrap_means`, datasets whose metric is a mean skip the bootstrap (the
/// ranking's test there is the t-test): their bootstrap fields are empty or NaN.
pub fn instance_comparisons(ix: &RunsIndex, cfg: &ReportConfig, bootstrap_means: bool) -> Vec<InstanceComparison> {
    let per_dataset: Vec<Vec<InstanceComparison>> = (0..ix.datasets.len())
        .into_par_iter()
        .map(|d| {
            let runs = dataset_runs(ix, d);
            let (
                Some(InstanceView {
                    values,
                    profiles,
                    is_mean,
                }),
                Some(level),
            ) = (instance_profiles(&runs), runs.stratum.instances.as_ref())
            else {
                return Vec::new();
            };
            let fixed: Vec<f64> = runs
                .stratum
                .scores
                .iter()
                .map(|v| (v - level.shift) / level.scale)
                .collect();
            let mut rng = Fast::from_stream(&mut rng_for(cfg.seed, &["instances", &ix.datasets[d]]));
            let reps = if is_mean && !bootstrap_means { 0 } else { cfg.poi_reps };
            let star = instance_resamples(&values, &fixed, &profiles, reps, &mut rng);
            let n_instances = values.iter().flatten().next().map_or(0, |v| v.len());
            let sign = ix.sign(d);
            let mut out = Vec::new();
            for (x, y) in system_pairs(ix) {
                let (Some(px), Some(py)) = (&profiles[x], &profiles[y]) else {
                    continue;
                };
                let diff: Vec<f64> = star[x].iter().zip(&star[y]).map(|(a, b)| a - b).collect();
                let p_one = |better: f64| {
                    let not = diff.iter().filter(|&&v| better * sign * v <= 0.0).count() as f64;
                    if diff.is_empty() {
                        f64::NAN
                    } else {
                        (not + 1.0) / (diff.len() as f64 + 1.0)
                    }
                };
                let (p_boot_x_better, p_boot_y_better) = (p_one(1.0), p_one(-1.0));
                let ttest = match (&px.profile, &py.profile) {
                    (Some(a), Some(b)) => paired(a, b, cfg.confidence),
                    _ => paired(&[], &[], cfg.confidence),
                };
                let (ttest_p_x_better, ttest_p_y_better) =
                    (t_sf(sign * ttest.t, ttest.df), t_sf(-sign * ttest.t, ttest.df));
                out.push(InstanceComparison {
                    dataset: d,
                    x,
                    y,
                    n_instances,
                    is_mean,
                    score_x: px.score,
                    score_y: py.score,
                    bootstrap: HierarchicalBootstrap {
                        estimate: px.score - py.score,
                        star: diff,
                        jackknife: Vec::new(),
                        levels: Levels {
                            datasets: false,
                            pretrain_seeds: false,
                            finetune_seeds: false,
                            instances: true,
                        },
                    },
                    p_boot_x_better,
                    p_boot_y_better,
                    ttest,
                    ttest_p_x_better,
                    ttest_p_y_better,
                });
            }
            out
        })
        .collect();
    per_dataset.into_iter().flatten().collect()
}

/// `instance_tests.csv`: [`instance_comparisons`] with the percentile interval of the
/// difference, the two-sided bootstrap p ([`HierarchicalBootstrap::p_value`]), the one-sided
/// p-values of x better than y, and Holm and BH over the table's two-sided bootstrap p-values.
pub fn instance_tests(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let comparisons = instance_comparisons(ix, cfg, true);
    let mut rows: Vec<InstanceTestRow> = comparisons
        .iter()
        .map(|c| {
            let b = &c.bootstrap;
            let (lo, hi) =
                ci_from_bootstrap_distribution(b.estimate, &b.star, &[], BootstrapMethod::Percentile, cfg.confidence);
            let (sx, sy) = (&ix.systems[c.x], &ix.systems[c.y]);
            InstanceTestRow {
                dataset: ix.datasets[c.dataset].clone(),
                model_x: sx.0.clone(),
                objective_x: sx.1.clone(),
                model_y: sy.0.clone(),
                objective_y: sy.1.clone(),
                n_instances: c.n_instances,
                metric_kind: if c.is_mean { "mean" } else { "corpus_f1" }.to_string(),
                score_x: c.score_x,
                score_y: c.score_y,
                mean_diff: b.estimate,
                reps: b.star.len(),
                ci_low: lo,
                ci_high: hi,
                p_boot: b.p_value(),
                p_boot_x_better: c.p_boot_x_better,
                ttest_t: c.ttest.t,
                ttest_p: c.ttest.p,
                ttest_p_x_better: c.ttest_p_x_better,
                ..InstanceTestRow::default()
            }
        })
        .collect();
    adjust_rows(&mut rows, |r| r.p_boot, |r, h, b| (r.p_boot_holm, r.p_boot_bh) = (h, b));
    Table::of(&rows)
}

/// One dataset's confidence-aware ranking: (system, score, cluster, smallest one-sided p of a
/// member of the cluster it was compared with beating it; NaN for the first), best first.
pub type Ranking = Vec<(usize, f64, usize, f64)>;

/// The ranking of EncodEval's `build_clusters` over `comparisons` of one dataset: systems by
/// score, best first (in the metric's direction); each joins the current cluster unless a
/// member of it beats it at [`RANKING_ALPHA`] by [`InstanceComparison::p_better`].
pub fn rank_clusters(comparisons: &[&InstanceComparison], sign: f64) -> Ranking {
    let mut systems: Vec<(usize, f64)> = Vec::new();
    for c in comparisons {
        for (s, v) in [(c.x, c.score_x), (c.y, c.score_y)] {
            if !systems.iter().any(|(t, _)| *t == s) {
                systems.push((s, v));
            }
        }
    }
    // best first; ties in order of the systems
    systems.sort_by(|a, b| (sign * b.1).total_cmp(&(sign * a.1)).then(a.0.cmp(&b.0)));
    let p_beats = |better: usize, worse: usize| -> f64 {
        comparisons
            .iter()
            .find_map(|c| {
                if (c.x, c.y) == (better, worse) {
                    Some(c.p_better(true))
                } else if (c.x, c.y) == (worse, better) {
                    Some(c.p_better(false))
                } else {
                    None
                }
            })
            .unwrap_or(f64::NAN)
    };
    let mut out = Vec::new();
    let mut cluster: Vec<usize> = Vec::new();
    let mut rank = 1;
    for &(s, score) in &systems {
        let ps: Vec<f64> = cluster.iter().map(|&m| p_beats(m, s)).collect();
        let min_p = ps.iter().copied().fold(f64::NAN, f64::min);
        if ps.iter().any(|&p| p < RANKING_ALPHA) {
            rank += 1;
            cluster.clear();
        }
        cluster.push(s);
        out.push((s, score, rank, min_p));
    }
    out
}

/// `ranking_clusters.csv`: [`rank_clusters`] per dataset with per-instance scores; `test` says
/// which one-sided test placed the systems (`ttest_rel` or `paired_bootstrap`).
pub fn ranking_clusters(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let comparisons = instance_comparisons(ix, cfg, false);
    let mut rows = Vec::new();
    for d in 0..ix.datasets.len() {
        let here: Vec<&InstanceComparison> = comparisons.iter().filter(|c| c.dataset == d).collect();
        let Some(first) = here.first() else { continue };
        let test = if first.is_mean { "ttest_rel" } else { "paired_bootstrap" };
        for (s, score, cluster, min_p) in rank_clusters(&here, ix.sign(d)) {
            rows.push(RankingClusterRow {
                dataset: ix.datasets[d].clone(),
                cluster,
                model: ix.systems[s].0.clone(),
                objective: ix.systems[s].1.clone(),
                score,
                test: test.to_string(),
                min_p,
            });
        }
    }
    Table::of(&rows)
}
