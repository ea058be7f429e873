//! The report's tables, one function each (columns as the analysis issue fixes them).

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::table::RunsIndex;
use super::{ReportConfig, Table};
use crate::artifacts::report::{
    AggregateRow, BestLrRow, BootstrapRow, ExpectedMaxRow, GroupStatsRow, MissingRunRow, PairedTestRow, PoiRow,
    ProfileRow, RankRow, UnpairedTestRow,
};
use crate::error::Result;
use crate::rng::{seeded, Rng};
use crate::stats::aggregate::{
    fraction_above, fraction_above_bootstrap, poi_bootstrap_pairs, probability_of_improvement, Aggregate, TaskScores,
};
use crate::stats::aggregate::{stratified_bootstrap, stratified_bootstrap_aggregates_both};
use crate::stats::bootstrap::{ci_all_methods, ci_from_bootstrap_distribution, jackknife, BootstrapMethod};
use crate::stats::describe::{iqm, mean, quantile, quantile_sorted, sem, sorted, std, t_interval};
use crate::stats::expected_max::expected_max_curve;
use crate::stats::multitest::{adjust, Correction};
use crate::stats::proportion::{is_failed, wilson_interval};
use crate::stats::rank::{friedman, mann_whitney, rank_average, wilcoxon};
use crate::stats::stability::{lr_sensitivity, seed_spread};
use crate::stats::ttest::{paired, welch};

/// An independent random stream for one (table, key…) from the master seed.
pub(super) fn rng_for(seed: u64, parts: &[&str]) -> Rng {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    let mut stream = [0u8; 8];
    stream.copy_from_slice(&digest[..8]);
    seeded(seed, u64::from_le_bytes(stream))
}

/// (low, high) of a value computed on sign-flipped scores, back in the original sign.
fn back_ci(sign: f64, lo: f64, hi: f64) -> (f64, f64) {
    if sign > 0.0 {
        (lo, hi)
    } else {
        (-hi, -lo)
    }
}

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
fn best_scores(ix: &RunsIndex, si: usize, d: usize) -> Vec<f64> {
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

/// Ranks of systems per dataset by best-LR mean, mean rank, and the Friedman test over datasets.
pub fn ranks_table(ix: &RunsIndex) -> Result<Table> {
    let k = ix.systems.len();
    let best_means: Vec<Vec<f64>> = (0..ix.datasets.len())
        .map(|d| (0..k).map(|si| mean(&best_scores(ix, si, d))).collect())
        .collect();
    let ranks: Vec<Vec<f64>> = best_means
        .iter()
        .map(|m| {
            let present: Vec<usize> = (0..k).filter(|&i| !m[i].is_nan()).collect();
            let r = rank_average(&present.iter().map(|&i| -m[i]).collect::<Vec<_>>());
            let mut out = vec![f64::NAN; k];
            for (p, &i) in present.iter().enumerate() {
                out[i] = r[p];
            }
            out
        })
        .collect();
    let complete: Vec<Vec<f64>> = best_means
        .iter()
        .filter(|m| m.iter().all(|v| !v.is_nan()))
        .cloned()
        .collect();
    let (chi2, p) = friedman(&complete);
    let mut rows = Vec::new();
    for si in 0..k {
        let own: Vec<f64> = ranks.iter().map(|r| r[si]).filter(|v| !v.is_nan()).collect();
        for d in 0..ix.datasets.len() {
            if ix.protocol(si, d).is_none() {
                continue;
            }
            rows.push(RankRow {
                model: ix.systems[si].0.clone(),
                objective: ix.systems[si].1.clone(),
                dataset: ix.datasets[d].clone(),
                best_mean: ix.sign(d) * best_means[d][si],
                rank: ranks[d][si],
                mean_rank: mean(&own),
                friedman_chi2: chi2,
                friedman_p: p,
            });
        }
    }
    Table::of(&rows)
}

/// Normalised report-split scores at the best learning rate, by task, failed runs imputed.
fn normalised(ix: &RunsIndex, si: usize) -> (Vec<usize>, TaskScores) {
    let mut tasks = Vec::new();
    let mut columns = Vec::new();
    for d in 0..ix.datasets.len() {
        let Some(g) = ix.selected(si, d) else {
            continue;
        };
        let m = ix.meta_of(d);
        tasks.push(d);
        columns.push(ix.imputed(d, g).iter().map(|&v| m.normalised(v)).collect());
    }
    (tasks, TaskScores { columns })
}

/// IQM, mean, median and optimality gap per system with stratified-bootstrap intervals.
pub fn aggregate_table(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    // one set of resamples serves the four aggregates; the task bootstrap (IQM) draws its own
    // tasks and reuses those resamples for each task's first draw
    let aggs = [
        Aggregate::Iqm,
        Aggregate::Mean,
        Aggregate::Median,
        Aggregate::OptimalityGap(1.0),
    ];
    let per_system: Vec<Vec<AggregateRow>> = (0..ix.systems.len())
        .into_par_iter()
        .map(|si| {
            let (model, objective) = &ix.systems[si];
            let (tasks, scores) = normalised(ix, si);
            let n_runs: usize = scores.columns.iter().map(Vec::len).sum();
            // both bootstraps in one pass (the task bootstrap reuses the runs' resamples where
            // it can), each from its own stream
            let (by_runs, by_tasks) = if n_runs == 0 {
                (vec![Vec::new(); aggs.len()], vec![Vec::new()])
            } else {
                let stream = |kind: &str| rng_for(cfg.seed, &["aggregate", model, objective, kind]);
                stratified_bootstrap_aggregates_both(
                    &scores,
                    &aggs,
                    &[Aggregate::Iqm],
                    cfg.aggregate_reps,
                    &mut stream("runs"),
                    &mut stream("tasks"),
                )
            };
            let mut rows = Vec::new();
            let plan = [
                (Aggregate::Iqm, false, &by_runs[0]),
                (Aggregate::Iqm, true, &by_tasks[0]),
                (aggs[1], false, &by_runs[1]),
                (aggs[2], false, &by_runs[2]),
                (aggs[3], false, &by_runs[3]),
            ];
            for (agg, task_bootstrap, star) in plan {
                let estimate = agg.of(&scores);
                let (lo, hi) = if star.is_empty() {
                    (f64::NAN, f64::NAN)
                } else {
                    ci_from_bootstrap_distribution(estimate, star, &[], BootstrapMethod::Percentile, cfg.confidence)
                };
                rows.push(AggregateRow {
                    model: model.clone(),
                    objective: objective.clone(),
                    aggregate: agg.name().to_string(),
                    task_bootstrap: if task_bootstrap { "True" } else { "False" }.to_string(),
                    n_runs,
                    n_tasks: tasks.len(),
                    estimate,
                    reps: cfg.aggregate_reps,
                    ci_low: lo,
                    ci_high: hi,
                });
            }
            rows
        })
        .collect();
    let rows: Vec<_> = per_system.into_iter().flatten().collect();
    Table::of(&rows)
}

/// Probability of improvement per pair of systems, over the tasks both have: each system
/// resampled once per replicate from its own stream, shared by its pairs.
pub fn poi_table(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let norm: Vec<(Vec<usize>, TaskScores)> = (0..ix.systems.len()).map(|si| normalised(ix, si)).collect();
    let pairs = system_pairs(ix);
    let mut streams: Vec<Rng> = ix
        .systems
        .iter()
        .map(|(model, objective)| rng_for(cfg.seed, &["poi", model, objective]))
        .collect();
    let stars = poi_bootstrap_pairs(&norm, &pairs, cfg.poi_reps, &mut streams);
    let rows: Vec<PoiRow> = pairs
        .par_iter()
        .zip(&stars)
        .map(|(&(i, j), star)| {
            let (ti, xi) = (&norm[i].0, &norm[i].1);
            let (tj, xj) = (&norm[j].0, &norm[j].1);
            let common: Vec<usize> = ti.iter().copied().filter(|t| tj.contains(t)).collect();
            let pick = |tasks: &[usize], x: &TaskScores| TaskScores {
                columns: common
                    .iter()
                    .map(|t| x.columns[tasks.iter().position(|u| u == t).unwrap_or(0)].clone())
                    .collect(),
            };
            let poi = probability_of_improvement(&pick(ti, xi), &pick(tj, xj));
            let (lo, hi) = if common.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                ci_from_bootstrap_distribution(poi, star, &[], BootstrapMethod::Percentile, cfg.confidence)
            };
            PoiRow {
                model_x: ix.systems[i].0.clone(),
                objective_x: ix.systems[i].1.clone(),
                model_y: ix.systems[j].0.clone(),
                objective_y: ix.systems[j].1.clone(),
                poi,
                reps: cfg.poi_reps,
                ci_low: lo,
                ci_high: hi,
            }
        })
        .collect();
    Table::of(&rows)
}

/// The default thresholds: the 5 %, 10 %, …, 95 % quantiles (type 7) of all normalised scores
/// pooled over systems, rounded to 4 decimals, duplicates removed.
fn taus_of(norm: &[TaskScores]) -> Vec<f64> {
    let pooled: Vec<f64> = norm.iter().flat_map(|x| x.columns.iter().flatten().copied()).collect();
    if pooled.is_empty() {
        return Vec::new();
    }
    let mut taus: Vec<f64> = (1..20)
        .map(|k| (quantile(&pooled, k as f64 * 0.05) * 1e4).round() / 1e4)
        .collect();
    taus.dedup();
    taus
}

/// Fraction of normalised runs above each threshold, per system, with intervals.
pub fn profile_table(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let norm: Vec<TaskScores> = (0..ix.systems.len()).map(|si| normalised(ix, si).1).collect();
    let taus = cfg.taus.clone().unwrap_or_else(|| taus_of(&norm));
    let per_system: Vec<Vec<ProfileRow>> = (0..ix.systems.len())
        .into_par_iter()
        .map(|si| {
            let (model, objective) = &ix.systems[si];
            let scores = &norm[si];
            // one set of resamples for every threshold (as rliable's profile)
            let mut rng = rng_for(cfg.seed, &["profile", model, objective]);
            let stars = fraction_above_bootstrap(scores, &taus, cfg.poi_reps, &mut rng);
            taus.iter()
                .zip(&stars)
                .map(|(&tau, star)| {
                    let f = fraction_above(scores, tau);
                    let (lo, hi) = if f.is_nan() {
                        (f64::NAN, f64::NAN)
                    } else {
                        ci_from_bootstrap_distribution(f, star, &[], BootstrapMethod::Percentile, cfg.confidence)
                    };
                    ProfileRow {
                        model: model.clone(),
                        objective: objective.clone(),
                        tau,
                        fraction_above: f,
                        reps: cfg.poi_reps,
                        ci_low: lo,
                        ci_high: hi,
                    }
                })
                .collect()
        })
        .collect();
    let rows: Vec<_> = per_system.into_iter().flatten().collect();
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
