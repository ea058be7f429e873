//! Tables that respect the study's design: the units of replication are datasets and
//! pretraining seeds, not rows. `tests_datasets.csv`: each system's normalised score per
//! dataset (the mean over all its replicates at the selected learning rate), paired across
//! datasets.

use rayon::prelude::*;

use super::table::RunsIndex;
use super::tables::system_pairs;
use super::{num, ReportConfig, Table};
use crate::stats::describe::mean;
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
            let (Some((_, report)), Some((lr, _))) = (ix.protocol(s, d), ix.best(s, d)) else {
                return f64::NAN;
            };
            let Some(g) = ix.group(s, d, &report, lr) else {
                return f64::NAN;
            };
            let m = ix.meta_of(d);
            (mean(&ix.values(d, g)) - m.chance_score) / (m.max_score - m.chance_score)
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
