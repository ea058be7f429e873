//! The tables across datasets: ranks, aggregates with stratified-bootstrap intervals,
//! probability of improvement, performance profiles.

use rayon::prelude::*;

use super::comparisons::system_pairs;
use super::per_system::best_scores;
use super::rng_for;
use super::table::RunsIndex;
use super::{ReportConfig, Table};
use crate::artifacts::report::{AggregateRow, PoiRow, ProfileRow, RankRow};
use crate::error::Result;
use crate::rng::Rng;
use crate::stats::aggregate::stratified_bootstrap_aggregates_both;
use crate::stats::aggregate::{
    fraction_above, fraction_above_bootstrap, poi_bootstrap_pairs, probability_of_improvement, Aggregate, TaskScores,
};
use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::describe::{mean, quantile};
use crate::stats::rank::{friedman, rank_average};

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
