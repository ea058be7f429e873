//! The per (system, dataset) tables: descriptive statistics, the learning rate chosen, expected
//! max, bootstrap intervals, the runs a design lacks.

use rayon::prelude::*;

use super::table::RunsIndex;
use super::{back_ci, rng_for};
use super::{ReportConfig, Table};
use crate::artifacts::report::{BestLrRow, BootstrapRow, ExpectedMaxRow, GroupStatsRow, MissingRunRow};
use crate::error::Result;
use crate::stats::aggregate::stratified_bootstrap;
use crate::stats::aggregate::TaskScores;
use crate::stats::bootstrap::{ci_all_methods, jackknife, BootstrapMethod};
use crate::stats::describe::{iqm, mean, quantile_sorted, sem, sorted, std, t_interval};
use crate::stats::expected_max::expected_max_curve;
use crate::stats::proportion::{is_failed, wilson_interval};
use crate::stats::stability::{lr_sensitivity, seed_spread};

/// Per (system, dataset, learning rate, split): descriptive statistics and failures.
pub fn group_stats(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let mut rows = Vec::new();
    for (&(si, d, ref split, lr_bits), group) in &ix.groups {
        let (model, objective) = &ix.systems[si];
        let sign = ix.sign(d);
        let v = ix.values(d, group);
        let sv = sorted(&v);
        let n_nan = group.scores.values().filter(|x| x.is_nan()).count();
        let chance = ix.meta_of(d).chance_score;
        let failed = group.scores.values().filter(|&&x| is_failed(x, chance)).count() as u64;
        let n = group.scores.len() as u64;
        let (tl, th) = t_interval(&v, cfg.confidence);
        let (tl, th) = back_ci(sign, tl, th);
        let (wl, wh) = wilson_interval(failed, n, cfg.confidence);
        let (q25, q75) = back_ci(sign, quantile_sorted(&sv, 0.25), quantile_sorted(&sv, 0.75));
        let (mn, mx) = back_ci(
            sign,
            sv.first().copied().unwrap_or(f64::NAN),
            sv.last().copied().unwrap_or(f64::NAN),
        );
        rows.push(GroupStatsRow {
            model: model.clone(),
            objective: objective.clone(),
            dataset: ix.datasets[d].clone(),
            learning_rate: f64::from_bits(lr_bits),
            split: split.clone(),
            n_runs: n,
            n_nan,
            n_valid: n as usize - n_nan,
            mean: sign * mean(&v),
            std: std(&v),
            sem: sem(&v),
            median: sign * quantile_sorted(&sv, 0.5),
            q25,
            q75,
            iqm: sign * iqm(&v),
            min: mn,
            max: mx,
            t_ci_low: tl,
            t_ci_high: th,
            failed_count: failed,
            failed_rate: failed as f64 / n as f64,
            failed_wilson_low: wl,
            failed_wilson_high: wh,
        });
    }
    Table::of(&rows)
}

/// (system, dataset, selection split, report split, best (learning rate, selection mean)).
type Pair = (usize, usize, String, String, Option<(f64, f64)>);

/// The (system, dataset) pairs in report order, with their protocol and best learning rate.
fn pairs(ix: &RunsIndex) -> Vec<Pair> {
    let mut out = Vec::new();
    for si in 0..ix.systems.len() {
        for d in 0..ix.datasets.len() {
            if let Some((select, report)) = ix.protocol(si, d) {
                out.push((si, d, select, report, ix.best(si, d)));
            }
        }
    }
    out
}

/// Report-split scores (after the NaN policy) of (s, d) at its best learning rate.
pub(super) fn best_scores(ix: &RunsIndex, si: usize, d: usize) -> Vec<f64> {
    ix.selected(si, d).map(|g| ix.values(d, g)).unwrap_or_default()
}

/// Per (system, dataset): best learning rate, its report-split scores, LR sensitivity, seed spread.
pub fn best_lr_table(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let mut rows = Vec::new();
    for (si, d, select, report, best) in pairs(ix) {
        let (model, objective) = &ix.systems[si];
        let sign = ix.sign(d);
        let x = best_scores(ix, si, d);
        let (tl, th) = t_interval(&x, cfg.confidence);
        let (tl, th) = back_ci(sign, tl, th);
        let report_lrs = ix.lrs(si, d, &report);
        let groups: Vec<Vec<f64>> = report_lrs
            .iter()
            .filter_map(|&lr| ix.group(si, d, &report, lr))
            .map(|g| ix.values(d, g))
            .collect();
        let seed_means: Vec<f64> = groups.iter().map(|g| mean(g)).collect();
        let chance = ix.meta_of(d).chance_score;
        let sens = lr_sensitivity(&seed_means, mean(&x), chance);
        let spread = seed_spread(&groups.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let all: Vec<f64> = report_lrs
            .iter()
            .filter_map(|&lr| ix.group(si, d, &report, lr))
            .flat_map(|g| g.scores.values().copied())
            .collect();
        let failed_all = all.iter().filter(|&&v| is_failed(v, chance)).count() as f64 / all.len().max(1) as f64;
        rows.push(BestLrRow {
            model: model.clone(),
            objective: objective.clone(),
            dataset: ix.datasets[d].clone(),
            select_split: select.clone(),
            report_split: report.clone(),
            n_lr: ix.lrs(si, d, &select).len(),
            best_lr: best.map_or(f64::NAN, |(lr, _)| lr),
            sel_mean_at_best: best.map_or(f64::NAN, |(_, m)| sign * m),
            best_mean: sign * mean(&x),
            best_std: std(&x),
            best_sem: sem(&x),
            best_n: x.len(),
            best_t_ci_low: tl,
            best_t_ci_high: th,
            lr_range: sens.range,
            lr_std: sens.std,
            lr_regret: sens.regret,
            lr_regret_norm: sens.regret_norm,
            seed_std_mean: spread.mean,
            seed_std_pooled: spread.pooled,
            failed_rate_all_lr: failed_all,
        });
    }
    Table::of(&rows)
}

/// Expected max vs number of trials on the selection split: all (lr, seed) runs, and the
/// seeds at the best learning rate.
pub fn expected_max_table(ix: &RunsIndex) -> Result<Table> {
    let per_pair: Vec<Vec<ExpectedMaxRow>> = pairs(ix)
        .into_par_iter()
        .map(|(si, d, select, _, best)| {
            let mut rows = Vec::new();
            let (model, objective) = &ix.systems[si];
            let sign = ix.sign(d);
            let all: Vec<f64> = ix
                .lrs(si, d, &select)
                .iter()
                .filter_map(|&lr| ix.group(si, d, &select, lr))
                .flat_map(|g| ix.values(d, g))
                .collect();
            let at_best = best
                .and_then(|(lr, _)| ix.group(si, d, &select, lr))
                .map(|g| ix.values(d, g))
                .unwrap_or_default();
            for (budget, trials) in [("all_runs", all), ("seeds_at_best_lr", at_best)] {
                for p in expected_max_curve(&trials) {
                    rows.push(ExpectedMaxRow {
                        model: model.clone(),
                        objective: objective.clone(),
                        dataset: ix.datasets[d].clone(),
                        split: select.clone(),
                        budget: budget.to_string(),
                        n_trials: trials.len(),
                        n: p.budget,
                        expected_max: sign * p.expected_max,
                        sd: p.sd,
                    });
                }
            }
            rows
        })
        .collect();
    let rows: Vec<_> = per_pair.into_iter().flatten().collect();
    Table::of(&rows)
}

/// Percentile, basic and BCa intervals of the report-split mean at the best learning rate.
pub fn bootstrap_table(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let per_pair: Vec<Vec<BootstrapRow>> = pairs(ix)
        .into_par_iter()
        .map(|(si, d, _, _, _)| {
            let mut rows = Vec::new();
            let (model, objective) = &ix.systems[si];
            let sign = ix.sign(d);
            // one task of the cell's runs: its resamples are the plain bootstrap's
            let scores = TaskScores {
                columns: vec![best_scores(ix, si, d)],
            };
            let x = &scores.columns[0];
            let mut rng = rng_for(cfg.seed, &["bootstrap", model, objective, &ix.datasets[d]]);
            let star: Vec<f64> = if x.len() < 2 {
                Vec::new()
            } else {
                stratified_bootstrap(
                    &scores,
                    |r| mean(&r.columns[0]),
                    cfg.bootstrap_resamples,
                    false,
                    &mut rng,
                )
            };
            let theta = mean(x);
            let jack = jackknife(x, mean);
            let intervals = ci_all_methods(theta, &star, &jack, cfg.confidence);
            let methods = [
                BootstrapMethod::Percentile,
                BootstrapMethod::Basic,
                BootstrapMethod::BCa,
            ];
            for (method, (lo, hi)) in methods.into_iter().zip(intervals) {
                let (lo, hi) = back_ci(sign, lo, hi);
                rows.push(BootstrapRow {
                    model: model.clone(),
                    objective: objective.clone(),
                    dataset: ix.datasets[d].clone(),
                    method: method.name().to_string(),
                    statistic: "mean".to_string(),
                    n: x.len(),
                    estimate: sign * theta,
                    confidence_level: cfg.confidence,
                    n_resamples: cfg.bootstrap_resamples,
                    ci_low: lo,
                    ci_high: hi,
                });
            }
            rows
        })
        .collect();
    let rows: Vec<_> = per_pair.into_iter().flatten().collect();
    Table::of(&rows)
}

/// Absent cells of the grid.
pub fn missing_runs(ix: &RunsIndex) -> Result<Table> {
    let mut rows = Vec::new();
    for (&(si, d, ref split, lr_bits), g) in &ix.groups {
        for (pretrain_seed, seed) in &g.missing {
            rows.push(MissingRunRow {
                model: ix.systems[si].0.clone(),
                objective: ix.systems[si].1.clone(),
                dataset: ix.datasets[d].clone(),
                split: split.clone(),
                learning_rate: f64::from_bits(lr_bits),
                pretrain_seed: *pretrain_seed,
                seed: *seed,
            });
        }
    }
    Table::of(&rows)
}
