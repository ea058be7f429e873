//! Tables that respect the study's design: the units of replication are datasets and
//! pretraining seeds, not rows. `tests_datasets.csv`: each system's normalised score per
//! dataset (the mean over all its replicates at the selected learning rate), paired across
//! datasets. `tests_hierarchical.csv`: the difference of two systems with a bootstrap that
//! resamples datasets (or not), pretraining seeds and fine-tuning seeds in turn.

use rayon::prelude::*;

use super::table::RunsIndex;
use super::tables::{rng_for, system_pairs};
use super::{num, ReportConfig, Table};
use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::describe::mean;
use crate::stats::hierarchical::{hierarchical_bootstrap_diff, Nested};
use crate::stats::multitest::{adjust, Correction};
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
pub fn tests_datasets(ix: &RunsIndex, cfg: &ReportConfig) -> Table {
    let means: Vec<Vec<f64>> = (0..ix.systems.len())
        .into_par_iter()
        .map(|s| dataset_means(ix, s))
        .collect();
    let mut rows = Vec::new();
    let mut extras = Vec::new();
    let mut ps = Vec::new();
    for (i, j) in system_pairs(ix) {
        let (x, y): (Vec<f64>, Vec<f64>) = means[i]
            .iter()
            .zip(&means[j])
            .filter(|(a, b)| !a.is_nan() && !b.is_nan())
            .map(|(a, b)| (*a, *b))
            .unzip();
        let (t, w, sign) = (paired(&x, &y, cfg.confidence), wilcoxon(&x, &y), sign_test(&x, &y));
        let (sx, sy) = (&ix.systems[i], &ix.systems[j]);
        rows.push(vec![
            sx.0.clone(),
            sx.1.clone(),
            sy.0.clone(),
            sy.1.clone(),
            x.len().to_string(),
            num(t.mean_diff),
            num(t.ci_low),
            num(t.ci_high),
            num(t.t),
            num(t.p),
            num(w.p),
            num(sign.p),
        ]);
        extras.push(vec![
            num(t.df),
            num(w.statistic),
            w.method.name().to_string(),
            sign.positive.to_string(),
            sign.negative.to_string(),
        ]);
        ps.push(t.p);
    }
    let (holm, bh) = (
        adjust(&ps, Correction::Holm),
        adjust(&ps, Correction::BenjaminiHochberg),
    );
    for (k, (row, extra)) in rows.iter_mut().zip(extras).enumerate() {
        row.push(num(holm[k]));
        row.push(num(bh[k]));
        row.extend(extra);
    }
    Table {
        name: "tests_datasets.csv",
        header: vec![
            "model_x",
            "objective_x",
            "model_y",
            "objective_y",
            "n_datasets",
            "mean_diff",
            "ci_low",
            "ci_high",
            "ttest_t",
            "ttest_p",
            "wilcoxon_p",
            "sign_p",
            "ttest_p_holm",
            "ttest_p_bh",
            "ttest_df",
            "wilcoxon_stat",
            "wilcoxon_method",
            "sign_positive",
            "sign_negative",
        ],
        rows,
    }
}

/// System `s`'s normalised replicates on each dataset at the selected learning rate on the
/// report split, by pretraining seed (failed runs as the NaN policy says); empty where it has
/// none.
pub fn nested_scores(ix: &RunsIndex, s: usize) -> Vec<Nested> {
    (0..ix.datasets.len())
        .map(|d| {
            let Some(g) = ix.selected(s, d) else {
                return Vec::new();
            };
            let mut by_pretrain: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
            for (&(pretrain_seed, _), &v) in &g.scores {
                if let Some(v) = ix.kept(d, v) {
                    by_pretrain
                        .entry(pretrain_seed)
                        .or_default()
                        .push(ix.meta_of(d).normalised(v));
                }
            }
            by_pretrain.into_values().collect()
        })
        .collect()
}

/// The hierarchical bootstrap of each pair's difference x − y (normalised, over the datasets
/// both have), without and with the dataset level: percentile and BCa intervals and the
/// bootstrap p-value, `reps` = the report's `poi_reps`. `dataset_bootstrap` says whether the
/// dataset level was asked for; `levels` which levels were resampled (a level with a single
/// unit everywhere is not: one dataset, or one pretraining seed per system, say so there).
///
/// Not yet one of the report's files: it resamples both systems anew for every pair (1225
/// pairs of 50 systems cost 3·10¹⁰ draws on a 2 M-row table); sharing each system's resamples
/// across its pairs, as `poi.csv` does, is the next step.
pub fn tests_hierarchical(ix: &RunsIndex, cfg: &ReportConfig) -> Table {
    let nested: Vec<Vec<Nested>> = (0..ix.systems.len())
        .into_par_iter()
        .map(|s| nested_scores(ix, s))
        .collect();
    let rows: Vec<Vec<Vec<String>>> = system_pairs(ix)
        .into_par_iter()
        .map(|(i, j)| {
            let (x, y): (Vec<Nested>, Vec<Nested>) = nested[i]
                .iter()
                .zip(&nested[j])
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .map(|(a, b)| (a.clone(), b.clone()))
                .unzip();
            let (sx, sy) = (&ix.systems[i], &ix.systems[j]);
            let seeds = |v: &[Nested]| v.iter().map(Vec::len).max().unwrap_or(0).to_string();
            [false, true]
                .iter()
                .map(|&datasets| {
                    let kind = if datasets { "datasets" } else { "within" };
                    let mut rng = rng_for(cfg.seed, &["hierarchical", &sx.0, &sx.1, &sy.0, &sy.1, kind]);
                    let b = hierarchical_bootstrap_diff(&x, &y, datasets, cfg.poi_reps, &mut rng);
                    let ci = |method| {
                        if x.is_empty() {
                            (f64::NAN, f64::NAN)
                        } else {
                            ci_from_bootstrap_distribution(b.estimate, &b.star, &b.jackknife, method, cfg.confidence)
                        }
                    };
                    let (pl, ph) = ci(BootstrapMethod::Percentile);
                    let (bl, bh) = ci(BootstrapMethod::BCa);
                    vec![
                        sx.0.clone(),
                        sx.1.clone(),
                        sy.0.clone(),
                        sy.1.clone(),
                        (if datasets { "True" } else { "False" }).to_string(),
                        b.levels.name(),
                        x.len().to_string(),
                        seeds(&x),
                        seeds(&y),
                        num(b.estimate),
                        cfg.poi_reps.to_string(),
                        num(pl),
                        num(ph),
                        num(bl),
                        num(bh),
                        num(b.p_value()),
                    ]
                })
                .collect()
        })
        .collect();
    Table {
        name: "tests_hierarchical.csv",
        header: vec![
            "model_x",
            "objective_x",
            "model_y",
            "objective_y",
            "dataset_bootstrap",
            "levels",
            "n_datasets",
            "n_pretrain_seeds_x",
            "n_pretrain_seeds_y",
            "mean_diff",
            "reps",
            "percentile_low",
            "percentile_high",
            "bca_low",
            "bca_high",
            "p_boot",
        ],
        rows: rows.into_iter().flatten().collect(),
    }
}
