//! Performance profiles: the fraction of all runs above a threshold, and its bootstrap at every
//! threshold from one set of resamples.

use rand::RngCore;

use super::intervals::{draw_counts, Slots};
use super::TaskScores;
use crate::rng::Fast;

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
/// threshold, the values [`super::stratified_bootstrap`] gives for it (task bootstrap off) with the
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
