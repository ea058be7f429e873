//! The probability of improvement P(X > Y) over tasks, and its bootstrap for many pairs of
//! systems from shared resamples.

use rand::RngCore;

use super::TaskScores;
use crate::rng::{below_u32_with, rejection_threshold, Fast};
use crate::stats::describe::mean_of;

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
/// `stratified_resample_into` draws from the same streams, picked to the common tasks. `U`
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
