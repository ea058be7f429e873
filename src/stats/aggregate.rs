//! Aggregates across tasks with stratified-bootstrap intervals (STATISTICS.md rows 9-11), as
//! rliable (Agarwal et al. 2021) defines them, with the explicit random stream rliable lacks.
//! Scores are normalised ((metric − chance) / (max − chance)) and given per task: column m
//! holds the runs (seeds) of task m.

use rand::RngCore;

use crate::rng::{below, below_u32_with, rejection_threshold};
use crate::stats::describe::{iqm, mean, mean_of, quantile, quantile_sorted};

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

/// The runs of all tasks laid end to end, with their order by value: a resample is then a
/// count per run, and an IQM a walk over the runs in order instead of a selection.
struct Slots {
    values: Vec<f64>,
    offsets: Vec<usize>,
    order: Vec<usize>,
    thresholds: Vec<u32>,
}

impl Slots {
    fn new(scores: &TaskScores) -> Self {
        let mut values = Vec::new();
        let mut offsets = Vec::with_capacity(scores.columns.len());
        for column in &scores.columns {
            offsets.push(values.len());
            values.extend_from_slice(column);
        }
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let thresholds = scores
            .columns
            .iter()
            .map(|c| rejection_threshold(c.len() as u32))
            .collect();
        Self {
            values,
            offsets,
            order,
            thresholds,
        }
    }

    /// The interquartile mean of the resample whose run counts are `counts` (`total` runs):
    /// the values of ranks `k..total-k`, `k = total / 4`, as `iqm` of the flattened resample.
    fn iqm(&self, counts: &[u32], total: usize) -> f64 {
        let (lo, hi) = if total < 4 {
            (0, total)
        } else {
            (total / 4, total - total / 4)
        };
        if hi == lo {
            return f64::NAN;
        }
        let (mut pos, mut sum) = (0, -0.0);
        let (mut first, mut constant) = (f64::NAN, true);
        for &slot in &self.order {
            let c = counts[slot] as usize;
            if c == 0 {
                continue;
            }
            let (a, b) = (pos.max(lo), (pos + c).min(hi));
            if b > a {
                let v = self.values[slot];
                if first.is_nan() {
                    first = v;
                } else if v != first {
                    constant = false;
                }
                sum += (b - a) as f64 * v;
            }
            pos += c;
            if pos >= hi {
                break;
            }
        }
        if constant {
            first
        } else {
            sum / (hi - lo) as f64
        }
    }
}

/// `reps` stratified resamples of `scores`, each evaluated with every aggregate of `aggs`:
/// one distribution per aggregate (one resample serves every aggregate, as in rliable when
/// its aggregate function returns several values). The draws are those of
/// [`stratified_resample_into`]; a resample is kept as a count per run.
pub fn stratified_bootstrap_aggregates(
    scores: &TaskScores,
    aggs: &[Aggregate],
    reps: usize,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
) -> Vec<Vec<f64>> {
    let slots = Slots::new(scores);
    let m = scores.columns.len();
    let mut counts = vec![0u32; slots.values.len()];
    let mut means = Vec::with_capacity(m);
    let mut out = vec![Vec::with_capacity(reps); aggs.len()];
    for _ in 0..reps {
        counts.fill(0);
        means.clear();
        let mut total = 0;
        for k in 0..m {
            let src = if task_bootstrap {
                below(rng, m as u64) as usize
            } else {
                k
            };
            let column = &scores.columns[src];
            let (len, threshold, offset) = (column.len() as u32, slots.thresholds[src], slots.offsets[src]);
            let counts = &mut counts[offset..offset + column.len()];
            let (mut sum, mut first, mut constant) = (-0.0, f64::NAN, true);
            for j in 0..column.len() {
                let i = below_u32_with(rng, len, threshold) as usize;
                counts[i] += 1;
                let v = column[i];
                first = if j == 0 { v } else { first };
                constant &= v == first;
                sum += v;
            }
            // as `mean` of the resampled column: exact when constant
            means.push(match (column.len(), constant) {
                (0, _) => f64::NAN,
                (_, true) => first,
                (n, false) => sum / n as f64,
            });
            total += column.len();
        }
        let mut sorted_means = false;
        for (dist, agg) in out.iter_mut().zip(aggs) {
            dist.push(match *agg {
                Aggregate::Iqm => slots.iqm(&counts, total),
                Aggregate::Mean => mean(&means),
                Aggregate::Median => {
                    if !sorted_means {
                        means.sort_unstable_by(|a, b| a.total_cmp(b));
                        sorted_means = true;
                    }
                    quantile_sorted(&means, 0.5)
                }
                Aggregate::OptimalityGap(gamma) => {
                    let clipped: f64 = counts
                        .iter()
                        .zip(&slots.values)
                        .map(|(&c, v)| c as f64 * v.min(gamma))
                        .sum();
                    gamma - clipped / total as f64
                }
            });
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
    mean_of(x.columns.iter().zip(&y.columns).map(|(a, b)| {
        // twice U, counted in integers (exact, and branch-free)
        let mut twice_u = 0u64;
        for xi in a {
            for yj in b {
                twice_u += 2 * u64::from(xi > yj) + u64::from(xi == yj);
            }
        }
        twice_u as f64 / 2.0 / (a.len() * b.len()) as f64
    }))
}

/// Fraction of all runs of all tasks scoring strictly above `tau` (the score-distribution
/// performance profile).
pub fn fraction_above(scores: &TaskScores, tau: f64) -> f64 {
    let n: usize = scores.columns.iter().map(Vec::len).sum();
    if n == 0 {
        return f64::NAN;
    }
    let above: usize = scores
        .columns
        .iter()
        .map(|c| c.iter().filter(|&&v| v > tau).count())
        .sum();
    above as f64 / n as f64
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
        let threshold = rejection_threshold(len);
        column.extend((0..source.len()).map(|_| source[below_u32_with(rng, len, threshold) as usize]));
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
