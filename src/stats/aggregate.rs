//! Aggregates across tasks with stratified-bootstrap intervals, as
//! rliable (Agarwal et al. 2021) defines them, with the explicit random stream rliable lacks.
//! Scores are normalised ((metric − chance) / (max − chance)) and given per task: column m
//! holds the runs (seeds) of task m.

use rand::RngCore;

use crate::rng::{below_u32_with, rejection_threshold, Fast};
use crate::stats::bootstrap::quantile_select;
use crate::stats::describe::{iqm, mean, mean_of, quantile};

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

/// The runs of all tasks laid end to end (task k's from `offsets[k]`), with their order by
/// value: a resample is then a count per run, and the IQM and optimality gap walks over the
/// counts in rank order instead of a selection over copied values.
struct Slots {
    offsets: Vec<usize>,
    /// The values in ascending order (`total_cmp`).
    sorted: Vec<f64>,
    /// The run (slot) at each position of `sorted`.
    order: Vec<u32>,
    thresholds: Vec<u32>,
    /// Whether every run of the task has the same value (its resampled mean is then exact).
    constant: Vec<bool>,
    /// 1 / runs of the task (a product where a division would stall each task).
    inverse: Vec<f64>,
}

impl Slots {
    fn new(scores: &TaskScores) -> Self {
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
fn draw_counts(rng: &mut Fast, threshold: u32, counts: &mut [u32]) {
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
/// [`stratified_resample_into`]; a resample is kept as a count per run, and the values agree
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

/// One system's runs for the shared resamples of [`poi_bootstrap_pairs`]: per task, its runs
/// in ascending order (NaN last: never below or equal to anything, as `>` and `==` treat it),
/// and where each run (in column order, as drawn) sits in that order. A resample is kept as
/// running counts per task: `n + 1` entries, entry r the resampled runs among the r lowest.
struct PoiSystem {
    sorted: Vec<Vec<f64>>,
    position: Vec<Vec<u32>>,
    thresholds: Vec<u32>,
    /// Where each task's running counts start in one resample (`n + 1` entries a task).
    offsets: Vec<usize>,
    len: usize,
}

impl PoiSystem {
    fn new(scores: &TaskScores) -> Self {
        let cmp = |p: &f64, q: &f64| p.partial_cmp(q).unwrap_or_else(|| p.is_nan().cmp(&q.is_nan()));
        let (mut sorted, mut position, mut offsets, mut len) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for column in &scores.columns {
            let mut order: Vec<u32> = (0..column.len() as u32).collect();
            order.sort_by(|&i, &j| cmp(&column[i as usize], &column[j as usize]));
            let mut at = vec![0u32; column.len()];
            for (r, &i) in order.iter().enumerate() {
                at[i as usize] = r as u32;
            }
            sorted.push(order.iter().map(|&i| column[i as usize]).collect());
            position.push(at);
            offsets.push(len);
            len += column.len() + 1;
        }
        Self {
            thresholds: scores
                .columns
                .iter()
                .map(|c| rejection_threshold(c.len() as u32))
                .collect(),
            sorted,
            position,
            offsets,
            len,
        }
    }

    /// Resample `b` of a block (the draws of [`stratified_resample_into`]) as running counts,
    /// interleaved: entry k of resample b at `k · BLOCK + b`, so that a pair reads the same
    /// entry of every resample of the block at once. The block's entries of `b` start at 0.
    fn resample_into(&self, rng: &mut Fast, block: &mut [u32], b: usize) {
        for (k, position) in self.position.iter().enumerate() {
            let (n, at) = (position.len() as u32, self.offsets[k]);
            for _ in 0..n {
                let r = position[below_u32_with(rng, n, self.thresholds[k]) as usize] as usize;
                block[(at + r + 1) * BLOCK + b] += 1;
            }
            for r in at + 1..=at + position.len() {
                block[r * BLOCK + b] += block[(r - 1) * BLOCK + b];
            }
        }
    }
}

/// Resamples per block of [`poi_bootstrap_pairs`].
const BLOCK: usize = 32;

/// One common task of a pair: where x's and y's running counts lie in a resample, x's runs,
/// `2·nₓ·n_y` (so that `2U / it` is `U / (nₓ·n_y)` exactly), and where its marks start.
struct PoiTaskPlan {
    x_at: usize,
    n_x: usize,
    y_at: usize,
    denominator: f64,
    marks_at: usize,
}

/// One pair's common tasks (in x's order), and for each run of x (ascending) how many runs of
/// y lie strictly below it and at or below it, all tasks end to end.
struct PoiPair {
    tasks: Vec<PoiTaskPlan>,
    marks: Vec<(u32, u32)>,
}

impl PoiPair {
    fn new(x: &PoiSystem, tx: &[usize], y: &PoiSystem, ty: &[usize]) -> Self {
        let (mut tasks, mut marks) = (Vec::new(), Vec::new());
        for (a, t) in tx.iter().enumerate() {
            let Some(b) = ty.iter().position(|u| u == t) else {
                continue;
            };
            let (xs, ys) = (&x.sorted[a], &y.sorted[b]);
            tasks.push(PoiTaskPlan {
                x_at: x.offsets[a],
                n_x: xs.len(),
                y_at: y.offsets[b],
                denominator: 2.0 * (xs.len() * ys.len()) as f64,
                marks_at: marks.len(),
            });
            marks.extend(xs.iter().map(|&v| {
                (
                    ys.partition_point(|&w| w < v) as u32,
                    ys.partition_point(|&w| w <= v) as u32,
                )
            }));
        }
        Self { tasks, marks }
    }

    /// The probability of improvement of x's resamples over y's, for the first `size` of a
    /// block (interleaved running counts, see [`PoiSystem::resample_into`]): per resample, the
    /// [`mean_of`] its tasks' values.
    fn poi_block(&self, cx: &[u32], cy: &[u32], size: usize) -> Vec<f64> {
        // per task, its value in every resample of the block (no task: NaN, as `mean_of`)
        let per_task: Vec<[f64; BLOCK]> = self
            .tasks
            .iter()
            .map(|t| {
                let marks = &self.marks[t.marks_at..t.marks_at + t.n_x];
                // 2U ≤ 2·nₓ·n_y: in 32-bit lanes (four to a baseline x86-64 vector, twice what
                // 64-bit ones give) when that fits, as almost always
                if t.denominator <= f64::from(u32::MAX) {
                    twice_u_block::<u32>(marks, cx, cy, t).map(|u| f64::from(u) / t.denominator)
                } else {
                    twice_u_block::<u64>(marks, cx, cy, t).map(|u| u as f64 / t.denominator)
                }
            })
            .collect();
        (0..size).map(|b| mean_of(per_task.iter().map(|v| v[b]))).collect()
    }
}

/// 2U of one task for every resample of a block: Σ over x's runs (ascending) of its count in
/// the resample times y's resampled runs below it plus those at or below it. In lanes of `T`,
/// which the caller checks hold `2·nₓ·n_y` (no sum can exceed it).
fn twice_u_block<T>(marks: &[(u32, u32)], cx: &[u32], cy: &[u32], t: &PoiTaskPlan) -> [T; BLOCK]
where
    T: Copy + Default + From<u32> + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    let mut twice_u = [T::default(); BLOCK];
    for (r, &(lo, le)) in marks.iter().enumerate() {
        let x0 = &cx[(t.x_at + r) * BLOCK..][..BLOCK];
        let x1 = &cx[(t.x_at + r + 1) * BLOCK..][..BLOCK];
        let y_lo = &cy[(t.y_at + lo as usize) * BLOCK..][..BLOCK];
        let y_le = &cy[(t.y_at + le as usize) * BLOCK..][..BLOCK];
        for b in 0..BLOCK {
            twice_u[b] = twice_u[b] + T::from(x1[b] - x0[b]) * (T::from(y_lo[b]) + T::from(y_le[b]));
        }
    }
    twice_u
}

/// The bootstraps of [`probability_of_improvement`] for `pairs` (x, y) of `systems` (each its
/// task ids and scores), over the tasks both have, in x's order: one set of `reps` resamples
/// per system, drawn from its own `streams[i]` (through [`Fast`]) and shared by every pair it
/// is in, so that a system's resamples do not depend on the others. Each pair's values are
/// those of resampling x and y independently (rliable's `StratifiedIndependentBootstrap`):
/// value for value, [`probability_of_improvement`] of the two resamples that
/// [`stratified_resample_into`] draws from the same streams, picked to the common tasks. `U`
/// is a sum over x's runs of its resample count times y's running counts (integers, exact).
pub fn poi_bootstrap_pairs<R: RngCore>(
    systems: &[(Vec<usize>, TaskScores)],
    pairs: &[(usize, usize)],
    reps: usize,
    streams: &mut [R],
) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    let prepared: Vec<PoiSystem> = systems.iter().map(|(_, scores)| PoiSystem::new(scores)).collect();
    let mut fast: Vec<Fast> = streams.iter_mut().map(Fast::from_stream).collect();
    let plans: Vec<PoiPair> = pairs
        .par_iter()
        .map(|&(i, j)| PoiPair::new(&prepared[i], &systems[i].0, &prepared[j], &systems[j].0))
        .collect();
    let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(reps); pairs.len()];
    let mut block: Vec<Vec<u32>> = prepared.iter().map(|p| vec![0; p.len * BLOCK]).collect();
    for start in (0..reps).step_by(BLOCK) {
        let size = BLOCK.min(reps - start);
        // each system's next `size` resamples, from its own stream
        block
            .par_iter_mut()
            .zip(fast.par_iter_mut())
            .zip(&prepared)
            .for_each(|((buf, rng), system)| {
                buf.fill(0);
                for b in 0..size {
                    system.resample_into(rng, buf, b);
                }
            });
        let values: Vec<Vec<f64>> = pairs
            .par_iter()
            .zip(&plans)
            .map(|(&(i, j), plan)| plan.poi_block(&block[i], &block[j], size))
            .collect();
        for (dist, v) in out.iter_mut().zip(values) {
            dist.extend(v);
        }
    }
    out
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

/// The bootstraps of [`fraction_above`] at every threshold of `taus`, from one set of
/// resamples (as rliable's score-distribution profile resamples once for all thresholds): per
/// threshold, the values [`stratified_bootstrap`] gives for it (task bootstrap off) with the
/// same `rng`, value for value. A resample is kept as counts per run; the count above each
/// threshold is then a lookup in their running sum by rank.
pub fn fraction_above_bootstrap(
    scores: &TaskScores,
    taus: &[f64],
    reps: usize,
    rng: &mut impl RngCore,
) -> Vec<Vec<f64>> {
    let rng = &mut Fast::from_stream(rng);
    let slots = Slots::new(scores);
    let n = slots.order.len();
    // the runs above a threshold are the ranks from `start[t]` to `end`: in `total_cmp` order
    // the NaNs (never above) lie at the two ends, by sign, and the rest ascend
    let first = slots.sorted.partition_point(|v| v.is_nan() && v.is_sign_negative());
    let end = slots.sorted.partition_point(|v| !(v.is_nan() && v.is_sign_positive()));
    let start: Vec<usize> = taus
        .iter()
        .map(|&tau| {
            if tau.is_nan() {
                end // nothing is above NaN
            } else {
                first + slots.sorted[first..end].partition_point(|&v| v <= tau)
            }
        })
        .collect();
    let mut counts = vec![0u32; n];
    let mut running = vec![0usize; n + 1];
    let mut out = vec![Vec::with_capacity(reps); taus.len()];
    for _ in 0..reps {
        counts.fill(0);
        for (k, column) in scores.columns.iter().enumerate() {
            let offset = slots.offsets[k];
            draw_counts(rng, slots.thresholds[k], &mut counts[offset..offset + column.len()]);
        }
        for (r, &slot) in slots.order.iter().enumerate() {
            running[r + 1] = running[r] + counts[slot as usize] as usize;
        }
        for (dist, &start) in out.iter_mut().zip(&start) {
            dist.push(if n == 0 {
                f64::NAN
            } else {
                (running[end] - running[start]) as f64 / n as f64
            });
        }
    }
    out
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

/// One stratified resample (see [`stratified_resample_into`]).
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

#[cfg(test)]
mod poi_tests {
    use super::*;
    use crate::rng::{below_u32, seeded};

    /// The shared-resample bootstraps give the resample-and-compare ones' values bit for bit
    /// (same draws, same integer 2U), ties, signed zeros, NaN, unequal sizes and systems with
    /// different tasks included; the profile's one set of resamples gives each threshold the
    /// values of its own bootstrap from the same stream.
    #[test]
    fn shared_resample_bootstraps_equal_the_direct_ones() {
        let mut rng = seeded(7, 0);
        let mut column = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| match i % 11 {
                    0 => 0.5,
                    1 => -0.0,
                    2 => 0.0,
                    3 if n > 5 => f64::NAN,
                    _ => (below_u32(&mut rng, 20) as f64) / 20.0,
                })
                .collect()
        };
        let systems = vec![
            (
                vec![0, 1, 2, 3],
                TaskScores {
                    columns: vec![column(7), column(1), column(30), column(12)],
                },
            ),
            (
                vec![0, 1, 2, 3],
                TaskScores {
                    columns: vec![column(5), column(9), column(30), column(3)],
                },
            ),
            (
                vec![3, 4, 1],
                TaskScores {
                    columns: vec![column(6), column(2), column(8)],
                },
            ),
            (
                vec![7],
                TaskScores {
                    columns: vec![column(4)],
                },
            ),
        ];
        let pairs = [(0, 1), (1, 0), (0, 2), (2, 1), (0, 3)];
        let reps = 75; // more than two blocks, the last one short
        let streams = || (0..systems.len() as u64).map(|k| seeded(1, k)).collect::<Vec<_>>();
        let shared = poi_bootstrap_pairs(&systems, &pairs, reps, &mut streams());
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for (p, &(i, j)) in pairs.iter().enumerate() {
            let (mut sx, mut sy) = (streams().remove(i), streams().remove(j));
            let (mut fx, mut fy) = (Fast::from_stream(&mut sx), Fast::from_stream(&mut sy));
            let (tx, ty) = (&systems[i].0, &systems[j].0);
            let common: Vec<(usize, usize)> = tx
                .iter()
                .enumerate()
                .filter_map(|(a, t)| ty.iter().position(|u| u == t).map(|b| (a, b)))
                .collect();
            let direct: Vec<f64> = (0..reps)
                .map(|_| {
                    let xs = stratified_resample(&systems[i].1, false, &mut fx);
                    let ys = stratified_resample(&systems[j].1, false, &mut fy);
                    let pick = |s: &TaskScores, second: bool| TaskScores {
                        columns: common
                            .iter()
                            .map(|&(a, b)| s.columns[if second { b } else { a }].clone())
                            .collect(),
                    };
                    probability_of_improvement(&pick(&xs, false), &pick(&ys, true))
                })
                .collect();
            assert_eq!(bits(&direct), bits(&shared[p]), "pair {i} {j}");
            assert_eq!(direct.iter().all(|v| v.is_nan()), common.is_empty());
        }
        let x = &systems[0].1;
        let taus = [0.0, 0.5, 0.73, f64::NAN];
        let profile = fraction_above_bootstrap(x, &taus, 200, &mut seeded(3, 4));
        for (tau, counted) in taus.iter().zip(&profile) {
            let direct = stratified_bootstrap(x, |s| fraction_above(s, *tau), 200, false, &mut seeded(3, 4));
            assert_eq!(bits(&direct), bits(counted), "tau {tau}");
        }
        assert!(profile[0].iter().any(|&v| v != profile[0][0]));
    }

    /// Past 2·nₓ·n_y = 2³² the block sums in 64-bit lanes: still the direct value, bit for bit
    /// (here from sorted counts, since the direct double loop would take 2·10⁹ comparisons).
    #[test]
    fn shared_resample_bootstraps_hold_past_32_bits() {
        let n: usize = 46_500; // 2·n² = 4,324,500,000 > u32::MAX
        let mut rng = seeded(8, 0);
        // x almost always above y (a few ties at 0.5), so that 2U comes near 2·n²
        let mut column = |from: f64| -> Vec<f64> {
            (0..n)
                .map(|_| from + f64::from(below_u32(&mut rng, 51)) / 100.0)
                .collect()
        };
        let systems = vec![
            (
                vec![0],
                TaskScores {
                    columns: vec![column(0.5)],
                },
            ),
            (
                vec![0],
                TaskScores {
                    columns: vec![column(0.0)],
                },
            ),
        ];
        let streams = || vec![seeded(2, 0), seeded(2, 1)];
        let shared = poi_bootstrap_pairs(&systems, &[(0, 1)], 3, &mut streams());
        let (mut sx, mut sy) = (streams().remove(0), streams().remove(1));
        let (mut fx, mut fy) = (Fast::from_stream(&mut sx), Fast::from_stream(&mut sy));
        for value in &shared[0] {
            let x = stratified_resample(&systems[0].1, false, &mut fx).columns.remove(0);
            let mut y = stratified_resample(&systems[1].1, false, &mut fy).columns.remove(0);
            y.sort_by(f64::total_cmp);
            let twice_u: u64 = x
                .iter()
                .map(|&v| (y.partition_point(|&w| w < v) + y.partition_point(|&w| w <= v)) as u64)
                .sum();
            assert!(twice_u > u64::from(u32::MAX), "the case must not fit a 32-bit lane");
            let direct = twice_u as f64 / 2.0 / (n * n) as f64;
            assert_eq!(direct.to_bits(), value.to_bits());
        }
    }
}
