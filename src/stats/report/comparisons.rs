//! The pairwise tests of systems: unpaired and paired, per dataset, Holm and BH adjusted.

use rayon::prelude::*;

use super::back_ci;
use super::per_system::best_scores;
use super::table::RunsIndex;
use super::{ReportConfig, Table};
use crate::artifacts::report::{PairedTestRow, UnpairedTestRow};
use crate::error::Result;
use crate::stats::describe::mean;
use crate::stats::multitest::{adjust, Correction};
use crate::stats::rank::{mann_whitney, wilcoxon};
use crate::stats::ttest::{paired, welch};

/// Ordered pairs of systems (i < j in order of first appearance).
pub(super) fn system_pairs(ix: &RunsIndex) -> Vec<(usize, usize)> {
    let n = ix.systems.len();
    (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect()
}

/// Welch and Mann-Whitney per dataset and pair of systems, at each system's best learning rate.
pub fn tests_unpaired(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let pairs = system_pairs(ix);
    // per dataset in parallel (each system's scores fetched once), then in dataset order
    let per_dataset: Vec<Vec<UnpairedTestRow>> = (0..ix.datasets.len())
        .into_par_iter()
        .map(|d| {
            let scores: Vec<Option<Vec<f64>>> = (0..ix.systems.len())
                .map(|i| ix.protocol(i, d).map(|_| best_scores(ix, i, d)))
                .collect();
            let mut out = Vec::new();
            for &(i, j) in &pairs {
                let (Some(x), Some(y)) = (&scores[i], &scores[j]) else {
                    continue;
                };
                let sign = ix.sign(d);
                let w = welch(x, y, cfg.confidence);
                let (cl, ch) = back_ci(sign, w.ci_low, w.ci_high);
                let u = mann_whitney(x, y);
                let poi = u.u1 / (x.len() * y.len()) as f64;
                out.push(UnpairedTestRow {
                    dataset: ix.datasets[d].clone(),
                    model_x: ix.systems[i].0.clone(),
                    objective_x: ix.systems[i].1.clone(),
                    model_y: ix.systems[j].0.clone(),
                    objective_y: ix.systems[j].1.clone(),
                    n_x: x.len(),
                    n_y: y.len(),
                    welch_t: sign * w.t,
                    welch_df: w.df,
                    welch_p: w.p,
                    mean_diff: sign * w.mean_diff,
                    welch_ci_low: cl,
                    welch_ci_high: ch,
                    mwu_u1: u.u1,
                    mwu_p: u.p,
                    mwu_method: u.method.name().to_string(),
                    poi_x_gt_y: poi,
                    ..UnpairedTestRow::default()
                });
            }
            out
        })
        .collect();
    let mut rows: Vec<UnpairedTestRow> = per_dataset.into_iter().flatten().collect();
    adjust_rows(
        &mut rows,
        |r| r.welch_p,
        |r, h, b| (r.welch_p_holm, r.welch_p_bh) = (h, b),
    );
    adjust_rows(&mut rows, |r| r.mwu_p, |r, h, b| (r.mwu_p_holm, r.mwu_p_bh) = (h, b));
    Table::of(&rows)
}

/// Sets on each row the Holm and the Benjamini-Hochberg adjustment of its p-value `p(row)`, the
/// family being all the rows: `set(row, holm, bh)`.
pub(super) fn adjust_rows<R>(rows: &mut [R], p: impl Fn(&R) -> f64, set: impl Fn(&mut R, f64, f64)) {
    let ps: Vec<f64> = rows.iter().map(p).collect();
    let holm = adjust(&ps, Correction::Holm);
    let bh = adjust(&ps, Correction::BenjaminiHochberg);
    for ((row, h), b) in rows.iter_mut().zip(holm).zip(bh) {
        set(row, h, b);
    }
}

/// Paired t and Wilcoxon per pair of systems, over (dataset, seed) units and over datasets.
pub fn tests_paired(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    // per pair in parallel, then in pair order
    let per_pair: Vec<Vec<PairedTestRow>> = system_pairs(ix)
        .into_par_iter()
        .map(|(i, j)| {
            let mut out = Vec::new();
            for level in ["dataset_seed", "dataset"] {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                for d in 0..ix.datasets.len() {
                    let (Some(gi), Some(gj)) = (ix.selected(i, d), ix.selected(j, d)) else {
                        continue;
                    };
                    if level == "dataset" {
                        x.push(mean(&ix.values(d, gi)));
                        y.push(mean(&ix.values(d, gj)));
                        continue;
                    }
                    for (replicate, &a) in &gi.scores {
                        let b = gj.scores.get(replicate).copied();
                        if let (Some(a), Some(b)) = (ix.kept(d, a), b.and_then(|b| ix.kept(d, b))) {
                            x.push(a);
                            y.push(b);
                        }
                    }
                }
                let t = paired(&x, &y, cfg.confidence);
                let w = wilcoxon(&x, &y);
                out.push(PairedTestRow {
                    level: level.to_string(),
                    model_x: ix.systems[i].0.clone(),
                    objective_x: ix.systems[i].1.clone(),
                    model_y: ix.systems[j].0.clone(),
                    objective_y: ix.systems[j].1.clone(),
                    n_pairs: x.len(),
                    mean_diff: t.mean_diff,
                    ttest_rel_t: t.t,
                    ttest_rel_df: t.df,
                    ttest_rel_p: t.p,
                    ttest_rel_ci_low: t.ci_low,
                    ttest_rel_ci_high: t.ci_high,
                    wilcoxon_stat: w.statistic,
                    wilcoxon_r_plus: w.r_plus,
                    wilcoxon_r_minus: w.r_minus,
                    wilcoxon_p: w.p,
                    wilcoxon_method: w.method.name().to_string(),
                    ..PairedTestRow::default()
                });
            }
            out
        })
        .collect();
    let mut rows: Vec<PairedTestRow> = per_pair.into_iter().flatten().collect();
    adjust_rows(
        &mut rows,
        |r| r.ttest_rel_p,
        |r, h, b| (r.ttest_rel_p_holm, r.ttest_rel_p_bh) = (h, b),
    );
    adjust_rows(
        &mut rows,
        |r| r.wilcoxon_p,
        |r, h, b| (r.wilcoxon_p_holm, r.wilcoxon_p_bh) = (h, b),
    );
    Table::of(&rows)
}
