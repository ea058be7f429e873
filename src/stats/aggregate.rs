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
/// count per run, kept at the run's rank (`rank`), and an IQM a walk over the counts in order
/// instead of a selection.
struct Slots {
    values: Vec<f64>,
    offsets: Vec<usize>,
    /// The values in ascending order (`total_cmp`).
    sorted: Vec<f64>,
    /// The position of each run (slot) in `sorted`.
    rank: Vec<u32>,
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
        let mut rank = vec![0u32; values.len()];
        for (r, &slot) in order.iter().enumerate() {
            rank[slot] = r as u32;
        }
        let thresholds = scores
            .columns
            .iter()
            .map(|c| rejection_threshold(c.len() as u32))
            .collect();
        Self {
            sorted: order.iter().map(|&i| values[i]).collect(),
            values,
            offsets,
            rank,
            thresholds,
        }
    }

    /// The interquartile mean of the resample whose run counts, by rank, are `counts` (`total`
    /// runs): the values of ranks `k..total-k`, `k = total / 4`, as `iqm` of the flattened
    /// resample. Branch-free over the runs: a run drawn 0 times adds 0.
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
        let (mut first, mut last) = (usize::MAX, 0);
        for (k, (&c, &v)) in counts.iter().zip(&self.sorted).enumerate() {
            let c = c as usize;
            let taken = (pos + c).min(hi).saturating_sub(pos.max(lo));
            sum += taken as f64 * v;
            first = if taken > 0 && first == usize::MAX { k } else { first };
            last = if taken > 0 { k } else { last };
            pos += c;
            if pos >= hi {
                break;
            }
        }
        if first == usize::MAX {
            return f64::NAN;
        }
        // sorted: every value taken equals the first one exactly when the last one does
        let (a, b) = (self.sorted[first], self.sorted[last]);
        if a == b {
            a
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
            let rank = &slots.rank[offset..offset + column.len()];
            let (mut sum, mut first, mut constant) = (-0.0, f64::NAN, true);
            for j in 0..column.len() {
                let i = below_u32_with(rng, len, threshold) as usize;
                counts[rank[i] as usize] += 1;
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
                    let clipped: f64 = slots
                        .rank
                        .iter()
                        .zip(&slots.values)
                        .map(|(&r, v)| counts[r as usize] as f64 * v.min(gamma))
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

/// Per task, what the probability of improvement needs of `y`'s runs sorted once: the rank of
/// each `y` run, and for each `x` run how many `y` values lie strictly below it and at or below
/// it. A resample is then a count per run, and `U` a weighted sum: O(n) per resample instead of
/// the O(n²) comparisons of [`probability_of_improvement`], with the same integer `2U`.
struct PoiTask {
    y_rank: Vec<u32>,
    below: Vec<u32>,
    at_or_below: Vec<u32>,
}

impl PoiTask {
    fn new(a: &[f64], b: &[f64]) -> Self {
        // NaN last: it is never below or equal to anything, as `>` and `==` treat it
        let cmp = |p: &f64, q: &f64| p.partial_cmp(q).unwrap_or_else(|| p.is_nan().cmp(&q.is_nan()));
        let mut order: Vec<u32> = (0..b.len() as u32).collect();
        order.sort_by(|&i, &j| cmp(&b[i as usize], &b[j as usize]));
        let sorted: Vec<f64> = order.iter().map(|&i| b[i as usize]).collect();
        let mut y_rank = vec![0u32; b.len()];
        for (r, &i) in order.iter().enumerate() {
            y_rank[i as usize] = r as u32;
        }
        Self {
            y_rank,
            below: a.iter().map(|&x| sorted.partition_point(|&v| v < x) as u32).collect(),
            at_or_below: a.iter().map(|&x| sorted.partition_point(|&v| v <= x) as u32).collect(),
        }
    }
}

/// `n` indices below `n` drawn with replacement, as [`stratified_resample_into`] draws them.
fn draw_with_replacement(rng: &mut impl RngCore, n: usize, mut hit: impl FnMut(usize)) {
    let len = n as u32;
    let threshold = rejection_threshold(len);
    for _ in 0..n {
        hit(below_u32_with(rng, len, threshold) as usize);
    }
}

/// The bootstrap of [`probability_of_improvement`] that [`paired_stratified_bootstrap`] gives,
/// value for value and from the same random draws, computed from resample counts (see
/// `PoiTask`): what makes the table scale to hundreds of seeds.
pub fn poi_bootstrap(x: &TaskScores, y: &TaskScores, reps: usize, rng: &mut impl RngCore) -> Vec<f64> {
    if x.columns.len() != y.columns.len() || x.columns.is_empty() {
        // the statistic is NaN whatever the draws; draw them all the same
        return paired_stratified_bootstrap(x, y, probability_of_improvement, reps, rng);
    }
    let tasks: Vec<PoiTask> = x
        .columns
        .iter()
        .zip(&y.columns)
        .map(|(a, b)| PoiTask::new(a, b))
        .collect();
    let mut cx: Vec<Vec<u32>> = x.columns.iter().map(|c| vec![0; c.len()]).collect();
    let mut cy: Vec<Vec<u64>> = y.columns.iter().map(|c| vec![0; c.len() + 1]).collect();
    (0..reps)
        .map(|_| {
            // the draws of `stratified_resample_into(x)` then `(y)`, kept as counts
            for c in cx.iter_mut() {
                c.fill(0);
                let n = c.len();
                draw_with_replacement(rng, n, |i| c[i] += 1);
            }
            for (k, c) in cy.iter_mut().enumerate() {
                c.fill(0);
                let rank = &tasks[k].y_rank;
                draw_with_replacement(rng, rank.len(), |j| c[rank[j] as usize + 1] += 1);
                for r in 1..c.len() {
                    c[r] += c[r - 1]; // c[r] = resampled y values among the r lowest
                }
            }
            mean_of(tasks.iter().enumerate().map(|(k, t)| {
                let (a, b) = (&cx[k], &cy[k]);
                let twice_u: u64 = a
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| u64::from(n) * (b[t.below[i] as usize] + b[t.at_or_below[i] as usize]))
                    .sum();
                twice_u as f64 / 2.0 / (a.len() * t.y_rank.len()) as f64
            }))
        })
        .collect()
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

/// The bootstrap of [`fraction_above`] that [`stratified_bootstrap`] gives (task bootstrap off),
/// value for value and from the same draws, counting the drawn runs above `tau` instead of
/// copying them.
pub fn fraction_above_bootstrap(scores: &TaskScores, tau: f64, reps: usize, rng: &mut impl RngCore) -> Vec<f64> {
    let n: usize = scores.columns.iter().map(Vec::len).sum();
    (0..reps)
        .map(|_| {
            let mut above = 0usize;
            for column in &scores.columns {
                draw_with_replacement(rng, column.len(), |i| above += usize::from(column[i] > tau));
            }
            if n == 0 {
                f64::NAN
            } else {
                above as f64 / n as f64
            }
        })
        .collect()
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

#[cfg(test)]
mod poi_tests {
    use super::*;
    use crate::rng::seeded;

    /// The count-based bootstrap gives the resample-and-compare one's values bit for bit (same
    /// draws, same integer 2U), ties, signed zeros, NaN and unequal sizes included.
    #[test]
    fn count_based_poi_bootstrap_equals_the_direct_one() {
        let mut rng = seeded(7, 0);
        let mut column = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| match i % 11 {
                    0 => 0.5,
                    1 => -0.0,
                    2 => 0.0,
                    3 if n > 5 => f64::NAN,
                    _ => (below(&mut rng, 20) as f64) / 20.0,
                })
                .collect()
        };
        let x = TaskScores {
            columns: vec![column(7), column(1), column(30), column(12)],
        };
        let y = TaskScores {
            columns: vec![column(5), column(9), column(30), column(3)],
        };
        let direct = paired_stratified_bootstrap(&x, &y, probability_of_improvement, 300, &mut seeded(1, 2));
        let counted = poi_bootstrap(&x, &y, 300, &mut seeded(1, 2));
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&direct), bits(&counted));
        for tau in [0.0, 0.5, 0.73] {
            let direct = stratified_bootstrap(&x, |s| fraction_above(s, tau), 200, false, &mut seeded(3, 4));
            let counted = fraction_above_bootstrap(&x, tau, 200, &mut seeded(3, 4));
            assert_eq!(bits(&direct), bits(&counted), "tau {tau}");
        }
        assert!(direct.iter().all(|v| v.is_finite()));
    }
}
