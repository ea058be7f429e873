//! Aggregates across tasks with stratified-bootstrap intervals, as
//! rliable (Agarwal et al. 2021) defines them, with the explicit random stream rliable lacks.
//! Scores are normalised ((metric − chance) / (max − chance)) and given per task: column m
//! holds the runs (seeds) of task m.
//!
//! - here: the scores ([`TaskScores`]), the aggregates ([`Aggregate`]), stratified resampling
//!   and the generic stratified bootstraps;
//! - `intervals`: the bootstrap distributions of the aggregates, from counts per run;
//! - `improvement`: the probability of improvement and its shared-resample bootstrap;
//! - `profile`: performance profiles (the fraction of runs above a threshold).

mod improvement;
mod intervals;
mod profile;
#[cfg(test)]
mod tests;

pub use improvement::{poi_bootstrap_pairs, probability_of_improvement};
pub use intervals::{stratified_bootstrap_aggregates, stratified_bootstrap_aggregates_both};
pub use profile::{fraction_above, fraction_above_bootstrap};

use rand::RngCore;

use crate::rng::{below_u32_with, rejection_threshold, Fast};
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

/// One stratified resample into `out` (same shape as `scores`): within each task, its runs
/// drawn with replacement; with `task_bootstrap`, the tasks themselves are also drawn with
/// replacement first.
pub(crate) fn stratified_resample_into(
    scores: &TaskScores,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
    out: &mut TaskScores,
) {
    let m = scores.columns.len();
    out.columns.resize(m, Vec::new());
    for k in 0..m {
        let source = if task_bootstrap {
            &scores.columns[below_u32_with(rng, m as u32, rejection_threshold(m as u32)) as usize]
        } else {
            &scores.columns[k]
        };
        let column = &mut out.columns[k];
        column.clear();
        let len = source.len() as u32;
        let threshold = rejection_threshold(len);
        column.extend((0..source.len()).map(|_| source[below_u32_with(rng, len, threshold) as usize]));
    }
}

/// One stratified resample (the draws of `stratified_resample_into`).
pub fn stratified_resample(scores: &TaskScores, task_bootstrap: bool, rng: &mut impl RngCore) -> TaskScores {
    let mut out = TaskScores { columns: Vec::new() };
    stratified_resample_into(scores, task_bootstrap, rng, &mut out);
    out
}

/// `reps` values of `statistic` over stratified resamples of `scores`, drawn by a [`Fast`]
/// generator seeded from `rng` (as every bootstrap of this module draws them).
pub fn stratified_bootstrap(
    scores: &TaskScores,
    statistic: impl Fn(&TaskScores) -> f64,
    reps: usize,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
) -> Vec<f64> {
    let rng = &mut Fast::from_stream(rng);
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
    let rng = &mut Fast::from_stream(rng);
    let (mut xs, mut ys) = (TaskScores { columns: Vec::new() }, TaskScores { columns: Vec::new() });
    (0..reps)
        .map(|_| {
            stratified_resample_into(x, false, rng, &mut xs);
            stratified_resample_into(y, false, rng, &mut ys);
            statistic(&xs, &ys)
        })
        .collect()
}
