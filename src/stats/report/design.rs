//! Tables that respect the study's design: the units of replication are datasets and
//! pretraining seeds, not rows. `tests_datasets.csv`: each system's normalised score per
//! dataset (the mean over all its replicates at the selected learning rate), paired across
//! datasets. `tests_hierarchical.csv`: the difference of two systems with a bootstrap that
//! resamples datasets (or not), pretraining seeds and fine-tuning seeds in turn.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use super::comparisons::{adjust_rows, system_pairs};
use super::rng_for;
use super::table::RunsIndex;
use super::{ReportConfig, Table};
use crate::artifacts::report::{DatasetTestRow, HierarchicalTestRow, InstanceMissingRow, InteractionTestRow};
use crate::error::Result;
use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::describe::mean;
use crate::stats::hierarchical::{
    hierarchical_bootstrap_contrasts, hierarchical_bootstrap_pairs, Contrast, HierarchicalBootstrap, InstanceLevel,
    NestedIx, Stratum,
};
use crate::stats::instances::InstanceValues;
use crate::stats::rank::wilcoxon;
use crate::stats::sign::sign_test;
use crate::stats::ttest::paired;

/// System `s`'s normalised score on each dataset ((mean − chance) / (max − chance) of its
/// replicates at the selected learning rate on the report split, failed runs as the NaN policy
/// says); NaN where it has none.
pub fn dataset_means(ix: &RunsIndex, s: usize) -> Vec<f64> {
    (0..ix.datasets.len())
        .map(|d| {
            ix.selected(s, d)
                .map_or(f64::NAN, |g| ix.meta_of(d).normalised(mean(&ix.values(d, g))))
        })
        .collect()
}

/// Paired t (with the t-interval of the mean difference), Wilcoxon signed-rank and the exact
/// sign test per pair of systems over the datasets both have (scipy `ttest_rel`, `wilcoxon`,
/// `binomtest` semantics), with Holm and Benjamini-Hochberg over the pairs' t-test p-values.
pub fn tests_datasets(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let means: Vec<Vec<f64>> = (0..ix.systems.len())
        .into_par_iter()
        .map(|s| dataset_means(ix, s))
        .collect();
    let mut rows = Vec::new();
    for (i, j) in system_pairs(ix) {
        let (x, y): (Vec<f64>, Vec<f64>) = means[i]
            .iter()
            .zip(&means[j])
            .filter(|(a, b)| !a.is_nan() && !b.is_nan())
            .map(|(a, b)| (*a, *b))
            .unzip();
        let (t, w, sign) = (paired(&x, &y, cfg.confidence), wilcoxon(&x, &y), sign_test(&x, &y));
        let (sx, sy) = (&ix.systems[i], &ix.systems[j]);
        rows.push(DatasetTestRow {
            model_x: sx.0.clone(),
            objective_x: sx.1.clone(),
            model_y: sy.0.clone(),
            objective_y: sy.1.clone(),
            n_datasets: x.len(),
            mean_diff: t.mean_diff,
            ci_low: t.ci_low,
            ci_high: t.ci_high,
            ttest_t: t.t,
            ttest_p: t.p,
            wilcoxon_p: w.p,
            sign_p: sign.p,
            ttest_df: t.df,
            wilcoxon_stat: w.statistic,
            wilcoxon_method: w.method.name().to_string(),
            sign_positive: sign.positive,
            sign_negative: sign.negative,
            ..DatasetTestRow::default()
        });
    }
    adjust_rows(
        &mut rows,
        |r| r.ttest_p,
        |r, h, b| (r.ttest_p_holm, r.ttest_p_bh) = (h, b),
    );
    Table::of(&rows)
}

/// The strata of datasets `common` and the runs there of systems `members`, in that order
/// (each member has runs on each of them).
pub(super) fn restrict<'a>(
    runs: &[DatasetRuns<'a>],
    common: &[usize],
    members: &[usize],
) -> (Vec<Stratum<'a>>, Vec<Vec<NestedIx>>) {
    let strata = common.iter().map(|&d| runs[d].stratum.clone()).collect();
    let systems = members
        .iter()
        .map(|&s| {
            common
                .iter()
                .map(|&d| runs[d].systems[s].clone().unwrap_or_default())
                .collect()
        })
        .collect();
    (strata, systems)
}

/// A bootstrap's percentile and BCa intervals, `[percentile low, high, BCa low, high]` (NaN
/// when there is no dataset to resample).
fn intervals(b: &HierarchicalBootstrap, empty: bool, confidence: f64) -> [f64; 4] {
    if empty {
        return [f64::NAN; 4];
    }
    let ci = |method| ci_from_bootstrap_distribution(b.estimate, &b.star, &b.jackknife, method, confidence);
    let ((pl, ph), (bl, bh)) = (ci(BootstrapMethod::Percentile), ci(BootstrapMethod::BCa));
    [pl, ph, bl, bh]
}

/// The runs of one dataset that the design-aware tables resample: every system's replicates
/// at its selected learning rate on the report split (normalised, failed runs as the NaN
/// policy says), by pretraining seed, with the instance level where per-instance values are
/// attached to every one of them.
#[derive(Debug, Clone)]
pub struct DatasetRuns<'a> {
    /// The runs and their instance level.
    pub stratum: Stratum<'a>,
    /// Per system, its runs here by pretraining seed (`None`: it has none).
    pub systems: Vec<Option<NestedIx>>,
    /// Runs that ended `ok` but have no per-instance values although others do: the dataset
    /// is then resampled at run level only, and these are named.
    pub without_instances: Vec<InstanceMissingRow>,
}

/// [`DatasetRuns`] of dataset `d`.
pub fn dataset_runs(ix: &RunsIndex, d: usize) -> DatasetRuns<'_> {
    let meta = ix.meta_of(d);
    let mut scores = Vec::new();
    let mut values: Vec<Option<&InstanceValues>> = Vec::new();
    let mut without = Vec::new();
    let systems = (0..ix.systems.len())
        .map(|s| {
            let (g, (_, report), (lr, _)) = (ix.selected(s, d)?, ix.protocol(s, d)?, ix.best(s, d)?);
            let mut by_pretrain: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for (&replicate, &v) in &g.scores {
                let Some(kept) = ix.kept(d, v) else { continue };
                let own = if v.is_nan() {
                    None
                } else {
                    ix.instances_of(s, d, &report, lr, replicate)
                };
                if !v.is_nan() && own.is_none() && ix.has_instances() {
                    let (m, o) = &ix.systems[s];
                    without.push(InstanceMissingRow {
                        model: m.clone(),
                        objective: o.clone(),
                        dataset: ix.datasets[d].clone(),
                        learning_rate: lr,
                        pretrain_seed: replicate.0,
                        seed: replicate.1,
                        split: report.clone(),
                    });
                }
                by_pretrain.entry(replicate.0).or_default().push(scores.len() as u32);
                scores.push(meta.normalised(kept));
                values.push(own);
            }
            (!by_pretrain.is_empty()).then(|| by_pretrain.into_values().collect())
        })
        .collect();
    let lengths: BTreeSet<usize> = values.iter().flatten().map(|v| v.len()).collect();
    let instances = (without.is_empty() && lengths.len() == 1).then(|| {
        let range = meta.max_score - meta.chance_score;
        InstanceLevel {
            runs: values,
            scale: ix.sign(d) / range,
            shift: -meta.chance_score / range,
        }
    });
    DatasetRuns {
        stratum: Stratum { scores, instances },
        systems,
        without_instances: without,
    }
}

/// The hierarchical bootstrap of each pair's difference x − y (normalised, over the datasets
/// both have), without and with the dataset level: percentile and BCa intervals and the
/// bootstrap p-value, `reps` = the report's `poi_reps`. Each replicate's resample of a system
/// is shared by all its pairs (pairs with the same datasets in common are resampled
/// together). `dataset_bootstrap` says whether the dataset level was asked for; `levels`
/// which levels were resampled (a level with a single unit everywhere is not: one dataset, or
/// one pretraining seed per system, say so there); `instance_datasets` on how many of the
/// pair's datasets the test instances were resampled too.
pub fn tests_hierarchical(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let runs: Vec<DatasetRuns> = (0..ix.datasets.len())
        .into_par_iter()
        .map(|d| dataset_runs(ix, d))
        .collect();
    // pairs by the datasets they have in common
    let mut groups: BTreeMap<Vec<usize>, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, j) in system_pairs(ix) {
        let common: Vec<usize> = (0..runs.len())
            .filter(|&d| runs[d].systems[i].is_some() && runs[d].systems[j].is_some())
            .collect();
        groups.entry(common).or_default().push((i, j));
    }
    // (x, y, dataset level) → the bootstrap, its datasets, those with an instance level
    let mut results: BTreeMap<(usize, usize, bool), (HierarchicalBootstrap, usize, usize)> = BTreeMap::new();
    let mut naive: BTreeMap<(usize, usize), (f64, f64)> = BTreeMap::new();
    for (common, pairs) in &groups {
        let members: Vec<usize> = pairs
            .iter()
            .flat_map(|&(i, j)| [i, j])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let local = |s: usize| members.iter().position(|&m| m == s).unwrap_or(0);
        let (strata, systems) = restrict(&runs, common, &members);
        let local_pairs: Vec<(usize, usize)> = pairs.iter().map(|&(i, j)| (local(i), local(j))).collect();
        let instance_datasets = strata.iter().filter(|s| s.instances.is_some()).count();
        let key: Vec<String> = common.iter().map(|&d| ix.datasets[d].clone()).collect();
        for datasets in [false, true] {
            let kind = if datasets { "datasets" } else { "within" };
            let mut rng = rng_for(cfg.seed, &["hierarchical", kind, &key.join("\u{1f}")]);
            let boots = hierarchical_bootstrap_pairs(&strata, &systems, &local_pairs, datasets, cfg.poi_reps, &mut rng);
            for (&(i, j), b) in pairs.iter().zip(boots) {
                results.insert((i, j, datasets), (b, common.len(), instance_datasets));
            }
        }
        // the naive interval: every run of a system on a dataset as an independent draw (its
        // pretraining seeds pooled, the test set fixed), datasets fixed — pseudo-replication
        let flat: Vec<Stratum> = strata
            .iter()
            .map(|s| Stratum {
                scores: s.scores.clone(),
                instances: None,
            })
            .collect();
        let pooled: Vec<Vec<NestedIx>> = systems
            .iter()
            .map(|sys| sys.iter().map(|nested| vec![nested.concat()]).collect())
            .collect();
        let mut rng = rng_for(cfg.seed, &["hierarchical", "naive", &key.join("\u{1f}")]);
        let boots = hierarchical_bootstrap_pairs(&flat, &pooled, &local_pairs, false, cfg.poi_reps, &mut rng);
        for (&(i, j), b) in pairs.iter().zip(boots) {
            let ci = if common.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                ci_from_bootstrap_distribution(b.estimate, &b.star, &[], BootstrapMethod::Percentile, cfg.confidence)
            };
            naive.insert((i, j), ci);
        }
    }
    let mut rows = Vec::new();
    for (i, j) in system_pairs(ix) {
        let (sx, sy) = (&ix.systems[i], &ix.systems[j]);
        for datasets in [false, true] {
            let Some(&(ref b, n_datasets, instance_datasets)) = results.get(&(i, j, datasets)) else {
                continue;
            };
            let m = b.star.len();
            let seeds = |s: usize| {
                (0..runs.len())
                    .filter_map(|d| runs[d].systems[s].as_ref().map(Vec::len))
                    .max()
                    .unwrap_or(0)
            };
            let [pl, ph, bl, bh] = intervals(b, n_datasets == 0, cfg.confidence);
            rows.push(HierarchicalTestRow {
                model_x: sx.0.clone(),
                objective_x: sx.1.clone(),
                model_y: sy.0.clone(),
                objective_y: sy.1.clone(),
                dataset_bootstrap: if datasets { "True" } else { "False" }.to_string(),
                levels: b.levels.name().to_string(),
                n_datasets,
                n_pretrain_seeds_x: seeds(i),
                n_pretrain_seeds_y: seeds(j),
                mean_diff: b.estimate,
                reps: m,
                percentile_low: pl,
                percentile_high: ph,
                bca_low: bl,
                bca_high: bh,
                p_boot: b.p_value(),
                instance_datasets,
                naive_low: naive.get(&(i, j)).map_or(f64::NAN, |c| c.0),
                naive_high: naive.get(&(i, j)).map_or(f64::NAN, |c| c.1),
            });
        }
    }
    Table::of(&rows)
}

/// The runs that ended `ok` but have no per-instance values while other runs do, so their
/// datasets were resampled at run level only (empty when no instances were given, or every
/// selected run has them).
pub fn instances_missing(ix: &RunsIndex, _cfg: &ReportConfig) -> Result<Table> {
    let rows: Vec<InstanceMissingRow> = (0..ix.datasets.len())
        .flat_map(|d| dataset_runs(ix, d).without_instances)
        .collect();
    Table::of(&rows)
}

/// `tests_interactions.csv`: each interaction of the report's settings, (x₁ − y₁) − (x₂ − y₂)
/// — e.g. (MLM 40 % − MLM 20 %) at one model size minus the same at another — with the
/// hierarchical bootstrap of [`tests_hierarchical`] (without and with the dataset level) over
/// the datasets all four systems have: the test a claim "the effect differs between A and B"
/// needs, where comparing two significance results does not answer it.
pub fn tests_interactions(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let runs: Vec<DatasetRuns> = (0..ix.datasets.len())
        .into_par_iter()
        .map(|d| dataset_runs(ix, d))
        .collect();
    let mut rows = Vec::new();
    for names in &cfg.interactions {
        let found: Vec<Option<usize>> = names.iter().map(|n| ix.system_named(n)).collect();
        let Some(members) = found.iter().copied().collect::<Option<Vec<usize>>>() else {
            continue;
        };
        let common: Vec<usize> = (0..runs.len())
            .filter(|&d| members.iter().all(|&s| runs[d].systems[s].is_some()))
            .collect();
        let (strata, systems) = restrict(&runs, &common, &members);
        let contrast: Contrast = vec![(0, 1.0), (1, -1.0), (2, -1.0), (3, 1.0)];
        for datasets in [false, true] {
            let kind = if datasets { "datasets" } else { "within" };
            let mut rng = rng_for(cfg.seed, &["interaction", kind, &names.join("\u{1f}")]);
            let b = hierarchical_bootstrap_contrasts(
                &strata,
                &systems,
                std::slice::from_ref(&contrast),
                datasets,
                cfg.poi_reps,
                &mut rng,
            )
            .swap_remove(0);
            let [pl, ph, bl, bh] = intervals(&b, common.is_empty(), cfg.confidence);
            let system = |k: usize| ix.systems[members[k]].clone();
            let ((model_x1, objective_x1), (model_y1, objective_y1)) = (system(0), system(1));
            let ((model_x2, objective_x2), (model_y2, objective_y2)) = (system(2), system(3));
            rows.push(InteractionTestRow {
                model_x1,
                objective_x1,
                model_y1,
                objective_y1,
                model_x2,
                objective_x2,
                model_y2,
                objective_y2,
                dataset_bootstrap: if datasets { "True" } else { "False" }.to_string(),
                levels: b.levels.name().to_string(),
                n_datasets: common.len(),
                instance_datasets: strata.iter().filter(|s| s.instances.is_some()).count(),
                interaction: b.estimate,
                reps: b.star.len(),
                percentile_low: pl,
                percentile_high: ph,
                bca_low: bl,
                bca_high: bh,
                p_boot: b.p_value(),
            });
        }
    }
    Table::of(&rows)
}
