//! The bootstrap distributions of the aggregates: a stratified resample kept as a count per
//! run, each aggregate then a walk over the counts in rank order.

use rand::RngCore;

use super::{Aggregate, TaskScores};
use crate::rng::{below_u32_with, rejection_threshold, Fast};
use crate::stats::bootstrap::quantile_select;
use crate::stats::describe::mean;

/// The runs of all tasks laid end to end (task k's from `offsets[k]`), with their order by
/// value: a resample is then a count per run, and the IQM and optimality gap walks over the
/// counts in rank order instead of a selection over copied values.
pub(super) struct Slots {
    /// Where each task's runs start.
    pub(super) offsets: Vec<usize>,
    /// The values in ascending order (`total_cmp`).
    pub(super) sorted: Vec<f64>,
    /// The run (slot) at each position of `sorted`.
    pub(super) order: Vec<u32>,
    /// Each task's rejection threshold for drawing one of its runs.
    pub(super) thresholds: Vec<u32>,
    /// Whether every run of the task has the same value (its resampled mean is then exact).
    constant: Vec<bool>,
    /// 1 / runs of the task (a product where a division would stall each task).
    inverse: Vec<f64>,
}

impl Slots {
    pub(super) fn new(scores: &TaskScores) -> Self {
        let mut values = Vec::new();
        let mut offsets = Vec::with_capacity(scores.columns.len());
        for column in &scores.columns {
            offsets.push(values.len());
            values.extend_from_slice(column);
        }
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
        let thresholds = scores
            .columns
            .iter()
            .map(|c| rejection_threshold(c.len() as u32))
            .collect();
        Self {
            sorted: order.iter().map(|&i| values[i as usize]).collect(),
            offsets,
            order,
            thresholds,
            constant: scores.columns.iter().map(|c| c.iter().all(|&v| v == c[0])).collect(),
            inverse: scores.columns.iter().map(|c| 1.0 / c.len() as f64).collect(),
        }
    }

    /// The interquartile mean of the resample whose run counts, by run, are `counts`: `total`
    /// runs summing to `sum`. The values of ranks `k..total-k`, `k = total / 4`, as `iqm` of
    /// the flattened resample (exactly the value when those are all equal): the sum less the
    /// `k` lowest and the `k` highest, found by walking in from both ends (half the runs).
    fn iqm(&self, counts: &[u32], total: usize, sum: f64) -> f64 {
        let k = if total < 4 { 0 } else { total / 4 };
        if total == 0 {
            return f64::NAN;
        }
        let (low, first) = walk_in(counts, &self.order, &self.sorted, k, false);
        let (high, last) = walk_in(counts, &self.order, &self.sorted, k, true);
        let (a, b) = (self.sorted[first], self.sorted[last]);
        if a == b {
            a
        } else {
            (sum - low - high) / (total - 2 * k) as f64
        }
    }
}

/// Walking in from the lowest rank (or from the highest, `from_top`): the sum of the `k`
/// lowest (highest) values of the resample whose counts by run are `counts` (the run at rank
/// r is `order[r]`; `k` < their total), and the rank holding the next one. Eight ranks at a
/// time until the eight that cross `k`, then one by one.
fn walk_in(counts: &[u32], order: &[u32], sorted: &[f64], k: usize, from_top: bool) -> (f64, usize) {
    let len = order.len();
    let (mut pos, mut sum, mut done) = (0usize, 0.0, 0usize);
    while done + 8 <= len {
        let ranks = if from_top {
            len - done - 8..len - done
        } else {
            done..done + 8
        };
        let c = ranked(counts, &order[ranks.clone()]);
        let total: usize = c.iter().map(|&c| c as usize).sum();
        if pos + total > k {
            break;
        }
        pos += total;
        sum += dot(&c, &sorted[ranks]);
        done += 8;
    }
    while done < len {
        let r = if from_top { len - 1 - done } else { done };
        let c = counts[order[r] as usize] as usize;
        if pos + c > k {
            return (sum + (k - pos) as f64 * sorted[r], r);
        }
        pos += c;
        sum += c as f64 * sorted[r];
        done += 1;
    }
    (sum, if from_top { 0 } else { len.saturating_sub(1) })
}

/// The counts of eight ranks.
fn ranked(counts: &[u32], order: &[u32]) -> [u32; 8] {
    let mut c = [0u32; 8];
    for (c, &slot) in c.iter_mut().zip(order) {
        *c = counts[slot as usize];
    }
    c
}

/// Σ counts[i] · values[i], in eight independent sums (so the additions do not wait on each
/// other and the loop vectorises).
fn dot(counts: &[u32], values: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (cs, vs) = (counts.chunks_exact(8), values.chunks_exact(8));
    let (c_rest, v_rest) = (cs.remainder(), vs.remainder());
    for (c, v) in cs.zip(vs) {
        for k in 0..8 {
            // through i32 (counts are far below 2³¹): the conversion baseline x86-64 vectorises
            acc[k] += f64::from(c[k] as i32) * v[k];
        }
    }
    let tail: f64 = c_rest.iter().zip(v_rest).map(|(&c, &v)| f64::from(c) * v).sum();
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// One resample of a column (Lemire `threshold` for its length), each drawn run counted in
/// `counts` (the column's own), returning the sum of the drawn values in four running sums
/// (draws in fours) so that the additions do not wait on each other.
#[inline(always)]
fn draw_summed(rng: &mut Fast, threshold: u32, column: &[f64], counts: &mut [u32]) -> f64 {
    let n = column.len() as u32;
    let (mut s0, mut s1, mut s2, mut s3) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut draw = || {
        let i = below_u32_with(rng, n, threshold) as usize;
        counts[i] += 1;
        column[i]
    };
    for _ in 0..n / 4 {
        s0 += draw();
        s1 += draw();
        s2 += draw();
        s3 += draw();
    }
    for _ in 0..n % 4 {
        s0 += draw();
    }
    (s0 + s1) + (s2 + s3)
}

/// One resample of a column of `counts.len()` runs, counted only.
#[inline(always)]
pub(super) fn draw_counts(rng: &mut Fast, threshold: u32, counts: &mut [u32]) {
    let n = counts.len() as u32;
    for _ in 0..n {
        counts[below_u32_with(rng, n, threshold) as usize] += 1;
    }
}

/// What evaluating `aggs` on a counted resample needs besides the counts: the optimality
/// gaps' excess over γ by rank and whether task means are wanted.
struct Evaluator<'a> {
    aggs: &'a [Aggregate],
    /// Per aggregate, the optimality gap's excess (v − γ) for the ranks above γ (the last
    /// ones); empty for the others.
    excess: Vec<Vec<f64>>,
    wants_median: bool,
    wants_means: bool,
}

impl<'a> Evaluator<'a> {
    fn new(aggs: &'a [Aggregate], slots: &Slots) -> Self {
        let excess = aggs
            .iter()
            .map(|agg| match *agg {
                Aggregate::OptimalityGap(gamma) => {
                    let above = slots.sorted.partition_point(|&v| v <= gamma);
                    slots.sorted[above..].iter().map(|v| v - gamma).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        let wants_median = aggs.contains(&Aggregate::Median);
        Self {
            aggs,
            excess,
            wants_median,
            wants_means: wants_median || aggs.contains(&Aggregate::Mean),
        }
    }

    /// Appends each aggregate's value on the resample with run counts `counts` and totals
    /// `tally` to its distribution in `out`.
    fn push(&self, slots: &Slots, out: &mut [Vec<f64>], counts: &[u32], tally: &mut Tally) {
        let (total, sum) = (tally.total, tally.sum);
        // the mean before the median's selection reorders the task means
        let mean_of_means = if self.wants_means { mean(&tally.means) } else { f64::NAN };
        let median_of_means = if self.wants_median {
            quantile_select(&mut tally.means, 0.5)
        } else {
            f64::NAN
        };
        for ((dist, agg), excess) in out.iter_mut().zip(self.aggs).zip(&self.excess) {
            dist.push(match *agg {
                Aggregate::Iqm => slots.iqm(counts, total, sum),
                Aggregate::Mean => mean_of_means,
                Aggregate::Median => median_of_means,
                // γ − mean(min(v, γ)): the sum less what lies above γ
                Aggregate::OptimalityGap(gamma) => {
                    let top = &slots.order[slots.order.len() - excess.len()..];
                    let above: f64 = top
                        .iter()
                        .zip(excess)
                        .map(|(&r, e)| f64::from(counts[r as usize]) * e)
                        .sum();
                    gamma - (sum - above) / total as f64
                }
            });
        }
    }
}

/// One resample's totals, added task by task: its runs, their sum and, when its aggregates
/// use them, its task means (in the order the tasks were added).
#[derive(Default)]
struct Tally {
    total: usize,
    sum: f64,
    means: Vec<f64>,
}

impl Tally {
    fn start(&mut self) {
        (self.total, self.sum) = (0, 0.0);
        self.means.clear();
    }

    /// Adds task `task`, whose resampled column sums to `sum`; its mean as `mean` of the
    /// resampled column (exact when the column is constant).
    fn add(&mut self, eval: &Evaluator, slots: &Slots, task: usize, sum: f64, column: &[f64]) {
        let n = column.len();
        self.total += n;
        self.sum += sum;
        if eval.wants_means {
            self.means.push(match (n, slots.constant[task]) {
                (0, _) => f64::NAN,
                (_, true) => column[0],
                _ => sum * slots.inverse[task],
            });
        }
    }
}

/// `reps` stratified resamples of `scores`, each evaluated with every aggregate of `aggs`:
/// one distribution per aggregate (one resample serves every aggregate, as in rliable when
/// its aggregate function returns several values). The draws are those of
/// `stratified_resample_into`; a resample is kept as a count per run, and the values agree
/// with [`Aggregate::of`] on the resample to rounding (sums taken in another order).
pub fn stratified_bootstrap_aggregates(
    scores: &TaskScores,
    aggs: &[Aggregate],
    reps: usize,
    task_bootstrap: bool,
    rng: &mut impl RngCore,
) -> Vec<Vec<f64>> {
    if !task_bootstrap {
        return stratified_bootstrap_aggregates_both(scores, aggs, &[], reps, rng, &mut Fast::from_state(0)).0;
    }
    let slots = Slots::new(scores);
    let eval = Evaluator::new(aggs, &slots);
    let m = scores.columns.len();
    let mut counts = vec![0u32; slots.order.len()];
    let mut tally = Tally::default();
    let mut out = vec![Vec::with_capacity(reps); aggs.len()];
    let rng = &mut Fast::from_stream(rng);
    let task_threshold = rejection_threshold(m as u32);
    for _ in 0..reps {
        counts.fill(0);
        tally.start();
        for _ in 0..m {
            let src = below_u32_with(rng, m as u32, task_threshold) as usize;
            let column = &scores.columns[src];
            let offset = slots.offsets[src];
            // a task drawn again holds its earlier draws' counts: the draws are summed as they come
            let sum = draw_summed(
                rng,
                slots.thresholds[src],
                column,
                &mut counts[offset..offset + column.len()],
            );
            tally.add(&eval, &slots, src, sum, column);
        }
        eval.push(&slots, &mut out, &counts, &mut tally);
    }
    out
}

/// The aggregate table's two bootstraps in one pass: `aggs` over `reps` resamples of the runs
/// within each task (exactly [`stratified_bootstrap_aggregates`] without the task bootstrap,
/// from `runs_rng`), and `task_aggs` over `reps` task-bootstrap resamples (the tasks drawn with
/// replacement too, from `tasks_rng`). A task-bootstrap resample takes, for the first time it
/// draws a task, that task's runs from the same replicate's resample of the runs instead of
/// drawing them anew (its later draws of the task are drawn from `tasks_rng`): each is a
/// uniform resample of the task's runs independent of everything else in the replicate, so
/// each distribution is exactly the bootstrap's, replicates stay independent of each other,
/// and about 63 % of the task bootstrap's draws (1 − (1 − 1/M)^M of its positions) are saved.
/// The two distributions of one replicate are correlated; each interval uses one of them.
pub fn stratified_bootstrap_aggregates_both(
    scores: &TaskScores,
    aggs: &[Aggregate],
    task_aggs: &[Aggregate],
    reps: usize,
    runs_rng: &mut impl RngCore,
    tasks_rng: &mut impl RngCore,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let slots = Slots::new(scores);
    let (eval, task_eval) = (Evaluator::new(aggs, &slots), Evaluator::new(task_aggs, &slots));
    let m = scores.columns.len();
    let mut counts = vec![0u32; slots.order.len()];
    let mut task_counts = vec![0u32; if task_aggs.is_empty() { 0 } else { slots.order.len() }];
    let (mut tally, mut sums, mut drawn) = (Tally::default(), vec![0.0; m], vec![false; m]);
    let mut out = vec![Vec::with_capacity(reps); aggs.len()];
    let mut task_out = vec![Vec::with_capacity(reps); task_aggs.len()];
    let rng = &mut Fast::from_stream(runs_rng);
    let tasks_rng = &mut Fast::from_stream(tasks_rng);
    let task_threshold = rejection_threshold(m as u32);
    for _ in 0..reps {
        // the runs within each task: counted, then each task's sum from its counts (dense)
        counts.fill(0);
        tally.start();
        for (k, column) in scores.columns.iter().enumerate() {
            let mine = &mut counts[slots.offsets[k]..slots.offsets[k] + column.len()];
            draw_counts(rng, slots.thresholds[k], mine);
            sums[k] = dot(mine, column);
            tally.add(&eval, &slots, k, sums[k], column);
        }
        eval.push(&slots, &mut out, &counts, &mut tally);
        if task_aggs.is_empty() {
            continue;
        }
        // the task bootstrap: a task's first draw reuses its runs' resample above
        task_counts.fill(0);
        drawn.fill(false);
        tally.start();
        for _ in 0..m {
            let src = below_u32_with(tasks_rng, m as u32, task_threshold) as usize;
            let column = &scores.columns[src];
            let (n, offset) = (column.len(), slots.offsets[src]);
            let mine = &mut task_counts[offset..offset + n];
            let sum = if drawn[src] {
                draw_summed(tasks_rng, slots.thresholds[src], column, mine)
            } else {
                drawn[src] = true;
                mine.copy_from_slice(&counts[offset..offset + n]);
                sums[src]
            };
            tally.add(&task_eval, &slots, src, sum, column);
        }
        task_eval.push(&slots, &mut task_out, &task_counts, &mut tally);
    }
    (out, task_out)
}
