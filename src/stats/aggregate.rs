//! Aggregates across tasks with stratified-bootstrap intervals (STATISTICS.md rows 9-11), as
//! rliable (Agarwal et al. 2021) defines them, with the explicit random stream rliable lacks.
//! Scores are normalised ((metric − chance) / (max − chance)) and given per task: column m
//! holds the runs (seeds) of task m.

use rand::RngCore;

use crate::rng::below;
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

/// One stratified resample: within each task, its runs drawn with replacement; with
/// `task_bootstrap`, the tasks themselves are also drawn with replacement first.
pub fn stratified_resample(scores: &TaskScores, task_bootstrap: bool, rng: &mut impl RngCore) -> TaskScores {
    let m = scores.columns.len();
    let columns = (0..m)
        .map(|k| {
            let source = if task_bootstrap {
                &scores.columns[below(rng, m as u64) as usize]
            } else {
                &scores.columns[k]
            };
            (0..source.len())
                .map(|_| source[below(rng, source.len() as u64) as usize])
                .collect()
        })
        .collect();
    TaskScores { columns }
}

/// `reps` values of `statistic` over stratified resamples of `scores`.
pub fn stratified_bootstrap(
    scores: &TaskScores,
    statistic: impl Fn(&TaskScores) -> f64,
    reps: usize,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
) -> Vec<f64> {
    (0..reps)
        .map(|_| statistic(&stratified_resample(scores, task_bootstrap, rng)))
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
    (0..reps)
        .map(|_| {
            let xs = stratified_resample(x, false, rng);
            let ys = stratified_resample(y, false, rng);
            statistic(&xs, &ys)
        })
        .collect()
}
