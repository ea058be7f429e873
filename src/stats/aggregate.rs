//! Aggregates across tasks with stratified-bootstrap intervals (STATISTICS.md rows 9-11), as
//! rliable (Agarwal et al. 2021) defines them, with the explicit random stream rliable lacks.
//! Scores are normalised ((metric − chance) / (max − chance)) and given per task: column m
//! holds the runs (seeds) of task m.

use rand::RngCore;

use crate::rng::{below, below_u32};
use crate::stats::describe::{iqm, mean, quantile};

/// Scores by task: `columns[m]` holds the runs of task m (NaN-free).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskScores {
    /// One column of runs per task.
    pub columns: Vec<Vec<f64>>,
}

/// An aggregate over all tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    /// Interquartile mean of all runs of all tasks.
    Iqm,
    /// Mean over tasks of the task means.
    Mean,
    /// Median over tasks of the task means.
    Median,
    /// γ − mean(min(x, γ)) over all runs of all tasks.
    OptimalityGap(f64),
}

impl Aggregate {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Iqm => "iqm",
            Aggregate::Mean => "mean",
            Aggregate::Median => "median",
            Aggregate::OptimalityGap(_) => "optimality_gap",
        }
    }

    /// The aggregate of `scores`.
    pub fn of(self, scores: &TaskScores) -> f64 {
        let task_means = || scores.columns.iter().map(|c| mean(c)).collect::<Vec<_>>();
        let flat = || scores.columns.iter().flatten().copied().collect::<Vec<_>>();
        match self {
            Aggregate::Iqm => iqm(&flat()),
            Aggregate::Mean => mean(&task_means()),
            Aggregate::Median => quantile(&task_means(), 0.5),
            Aggregate::OptimalityGap(gamma) => gamma - mean(&flat().iter().map(|v| v.min(gamma)).collect::<Vec<_>>()),
        }
    }
}

/// Several aggregates of `scores` at once, reusing `flat` and `means` as scratch space (the
/// bootstrap's inner loop: one resample serves every aggregate, as in rliable when its
/// aggregate function returns several values).
pub fn aggregates_into(
    scores: &TaskScores,
    aggs: &[Aggregate],
    flat: &mut Vec<f64>,
    means: &mut Vec<f64>,
    out: &mut Vec<f64>,
) {
    flat.clear();
    means.clear();
    for column in &scores.columns {
        flat.extend_from_slice(column);
        means.push(mean(column));
    }
    let mut sorted_flat = false; // the middle of `flat` is selected (IQM)
    let mut sorted_means = false;
    out.clear();
    for agg in aggs {
        out.push(match *agg {
            Aggregate::Iqm => {
                let n = flat.len();
                if n < 4 {
                    mean(flat)
                } else {
                    // the middle n − 2k values by two linear-time selections instead of a sort
                    let k = n / 4;
                    if !sorted_flat {
                        flat.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
                        let upper = &mut flat[k..];
                        let keep = n - 2 * k;
                        if keep < upper.len() {
                            upper.select_nth_unstable_by(keep - 1, |a, b| a.total_cmp(b));
                        }
                        sorted_flat = true;
                    }
                    flat[k..n - k].iter().sum::<f64>() / (n - 2 * k) as f64
                }
            }
            Aggregate::Mean => mean(means),
            Aggregate::Median => {
                if !sorted_means {
                    means.sort_unstable_by(|a, b| a.total_cmp(b));
                    sorted_means = true;
                }
                crate::stats::describe::quantile_sorted(means, 0.5)
            }
            Aggregate::OptimalityGap(gamma) => {
                gamma - flat.iter().map(|v| v.min(gamma)).sum::<f64>() / flat.len() as f64
            }
        });
    }
}

/// `reps` stratified resamples of `scores`, each evaluated with every aggregate of `aggs`:
/// one distribution per aggregate.
pub fn stratified_bootstrap_aggregates(
    scores: &TaskScores,
    aggs: &[Aggregate],
    reps: usize,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
) -> Vec<Vec<f64>> {
    let mut buf = TaskScores { columns: Vec::new() };
    let (mut flat, mut means, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = vec![Vec::with_capacity(reps); aggs.len()];
    for _ in 0..reps {
        stratified_resample_into(scores, task_bootstrap, rng, &mut buf);
        aggregates_into(&buf, aggs, &mut flat, &mut means, &mut values);
        for (dist, v) in out.iter_mut().zip(&values) {
            dist.push(*v);
        }
    }
    out
}

/// Probability of improvement P(X > Y): mean over tasks of P(x > y) + ½ P(x = y) for a run of
/// each (the Mann-Whitney U of x over nₓ·n_y). Both must have the same tasks.
pub fn probability_of_improvement(x: &TaskScores, y: &TaskScores) -> f64 {
    if x.columns.len() != y.columns.len() || x.columns.is_empty() {
        return f64::NAN;
    }
    let per_task: Vec<f64> = x
        .columns
        .iter()
        .zip(&y.columns)
        .map(|(a, b)| {
            let mut u = 0.0;
            for xi in a {
                for yj in b {
                    u += if xi > yj {
                        1.0
                    } else if xi == yj {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
            u / (a.len() * b.len()) as f64
        })
        .collect();
    mean(&per_task)
}

/// Fraction of all runs of all tasks scoring strictly above `tau` (the score-distribution
/// performance profile).
pub fn fraction_above(scores: &TaskScores, tau: f64) -> f64 {
    let flat: Vec<f64> = scores.columns.iter().flatten().copied().collect();
    if flat.is_empty() {
        return f64::NAN;
    }
    flat.iter().filter(|&&v| v > tau).count() as f64 / flat.len() as f64
}

/// One stratified resample into `out` (same shape as `scores`): within each task, its runs
/// drawn with replacement; with `task_bootstrap`, the tasks themselves are also drawn with
/// replacement first.
pub fn stratified_resample_into(
    scores: &TaskScores,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
    out: &mut TaskScores,
) {
    let m = scores.columns.len();
    out.columns.resize(m, Vec::new());
    for k in 0..m {
        let source = if task_bootstrap {
            &scores.columns[below(rng, m as u64) as usize]
        } else {
            &scores.columns[k]
        };
        let column = &mut out.columns[k];
        column.clear();
        let len = source.len() as u32;
        column.extend((0..source.len()).map(|_| source[below_u32(rng, len) as usize]));
    }
}

/// One stratified resample (see [`stratified_resample_into`]).
pub fn stratified_resample(scores: &TaskScores, task_bootstrap: bool, rng: &mut impl RngCore) -> TaskScores {
    let mut out = TaskScores { columns: Vec::new() };
    stratified_resample_into(scores, task_bootstrap, rng, &mut out);
    out
}

/// `reps` values of `statistic` over stratified resamples of `scores`.
pub fn stratified_bootstrap(
    scores: &TaskScores,
    statistic: impl Fn(&TaskScores) -> f64,
    reps: usize,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
) -> Vec<f64> {
    let mut buf = TaskScores { columns: Vec::new() };
    (0..reps)
        .map(|_| {
            stratified_resample_into(scores, task_bootstrap, rng, &mut buf);
            statistic(&buf)
        })
        .collect()
}

/// `reps` values of `statistic(X*, Y*)` with X and Y resampled independently, each
/// stratified by task (rliable's `StratifiedIndependentBootstrap`).
pub fn paired_stratified_bootstrap(
    x: &TaskScores,
    y: &TaskScores,
    statistic: impl Fn(&TaskScores, &TaskScores) -> f64,
    reps: usize,
    rng: &mut impl RngCore,
) -> Vec<f64> {
    let (mut xs, mut ys) = (TaskScores { columns: Vec::new() }, TaskScores { columns: Vec::new() });
    (0..reps)
        .map(|_| {
            stratified_resample_into(x, false, rng, &mut xs);
            stratified_resample_into(y, false, rng, &mut ys);
            statistic(&xs, &ys)
        })
        .collect()
}
