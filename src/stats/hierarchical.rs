//! The hierarchical bootstrap of a difference between two systems: resample the levels of the
//! design that exist, outermost first — datasets (optional, as rliable's task bootstrap), then
//! within each dataset and system its pretraining seeds, then within each drawn pretraining
//! seed its fine-tuning seeds. Rows of a runs table are not independent (the seeds of one
//! pretraining run share its weights, the runs of one dataset its difficulty); resampling them
//! as if they were (pseudo-replication) makes intervals too narrow.

use rand::RngCore;

use crate::rng::{below_u32_with, rejection_threshold, Fast};
use crate::stats::describe::mean;

/// One system's scores on one dataset, by pretraining seed: `nested[p]` holds the fine-tuning
/// replicates of its p-th pretraining seed.
pub type Nested = Vec<Vec<f64>>;

/// Which levels a bootstrap resampled (a level with one unit everywhere is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// Datasets drawn with replacement.
    pub datasets: bool,
    /// Pretraining seeds drawn with replacement within each (system, dataset).
    pub pretrain_seeds: bool,
    /// Fine-tuning seeds drawn with replacement within each drawn pretraining seed.
    pub finetune_seeds: bool,
}

impl Levels {
    /// `datasets+pretrain_seeds+finetune_seeds`, the resampled ones outermost first (`none`).
    pub fn name(self) -> String {
        let names: Vec<&str> = [
            (self.datasets, "datasets"),
            (self.pretrain_seeds, "pretrain_seeds"),
            (self.finetune_seeds, "finetune_seeds"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join("+")
        }
    }
}

/// A system's score on a dataset: the mean over its pretraining seeds of their mean over
/// fine-tuning seeds (each pretraining run weighs the same, whatever its number of runs).
pub fn nested_mean(nested: &Nested) -> f64 {
    mean(&nested.iter().map(|runs| mean(runs)).collect::<Vec<_>>())
}

/// The difference x − y: the mean over datasets of the difference of their nested means.
pub fn hierarchical_diff(x: &[Nested], y: &[Nested]) -> f64 {
    mean(
        &x.iter()
            .zip(y)
            .map(|(a, b)| nested_mean(a) - nested_mean(b))
            .collect::<Vec<_>>(),
    )
}

/// The bootstrap distribution of [`hierarchical_diff`] with what its intervals need.
#[derive(Debug, Clone, PartialEq)]
pub struct HierarchicalBootstrap {
    /// The difference on the data.
    pub estimate: f64,
    /// Its resampled values.
    pub star: Vec<f64>,
    /// Leave-one-out values over the outermost resampled level, for the BCa acceleration: one
    /// dataset out when datasets are resampled; else one unit of one (system, dataset) stratum
    /// at a time (a pretraining seed where there are several, else a fine-tuning seed), as
    /// scipy's BCa jackknifes each sample of a multi-sample statistic.
    pub jackknife: Vec<f64>,
    /// The levels resampled.
    pub levels: Levels,
}

impl HierarchicalBootstrap {
    /// Two-sided bootstrap p-value of H₀: difference 0, `min(1, 2·min(P*(θ* ≤ 0), P*(θ* ≥ 0)))`
    /// with each proportion counted as (k + 1) / (B + 1), so that it is never 0.
    pub fn p_value(&self) -> f64 {
        if self.star.is_empty() || self.star.iter().any(|v| v.is_nan()) {
            return f64::NAN;
        }
        let b = self.star.len() as f64;
        let below = self.star.iter().filter(|&&v| v <= 0.0).count() as f64;
        let above = self.star.iter().filter(|&&v| v >= 0.0).count() as f64;
        (2.0 * ((below + 1.0) / (b + 1.0)).min((above + 1.0) / (b + 1.0))).min(1.0)
    }
}

/// `reps` hierarchical resamples of x − y over their common datasets (`x[d]` and `y[d]` the same
/// dataset), datasets drawn too when `resample_datasets` (and there are several), from one
/// stream `rng`.
pub fn hierarchical_bootstrap_diff(
    x: &[Nested],
    y: &[Nested],
    resample_datasets: bool,
    reps: usize,
    rng: &mut impl RngCore,
) -> HierarchicalBootstrap {
    let all = || x.iter().chain(y);
    let levels = Levels {
        datasets: resample_datasets && x.len() > 1,
        pretrain_seeds: all().any(|n| n.len() > 1),
        finetune_seeds: all().flatten().any(|runs| runs.len() > 1),
    };
    let estimate = hierarchical_diff(x, y);
    let rng = &mut Fast::from_stream(rng);
    let m = x.len();
    let m_threshold = rejection_threshold(m as u32);
    let mut star = Vec::with_capacity(reps);
    for _ in 0..reps {
        let mut total = 0.0;
        for k in 0..m {
            let d = if levels.datasets {
                below_u32_with(rng, m as u32, m_threshold) as usize
            } else {
                k
            };
            total += resampled_mean(&x[d], rng) - resampled_mean(&y[d], rng);
        }
        star.push(if m == 0 { f64::NAN } else { total / m as f64 });
    }
    HierarchicalBootstrap {
        estimate,
        star,
        jackknife: jackknife(x, y, levels),
        levels,
    }
}

/// [`nested_mean`] of one resample: pretraining seeds drawn with replacement, then the
/// fine-tuning seeds of each drawn one.
fn resampled_mean(nested: &Nested, rng: &mut Fast) -> f64 {
    let p = nested.len();
    if p == 0 {
        return f64::NAN;
    }
    let p_threshold = rejection_threshold(p as u32);
    let mut sum = 0.0;
    for _ in 0..p {
        let runs = &nested[below_u32_with(rng, p as u32, p_threshold) as usize];
        let n = runs.len() as u32;
        // the rejection threshold once per drawn seed, not once per draw (it is a division)
        let threshold = rejection_threshold(n);
        let drawn: f64 = (0..n).map(|_| runs[below_u32_with(rng, n, threshold) as usize]).sum();
        sum += drawn / f64::from(n);
    }
    sum / p as f64
}

/// The leave-one-out values of [`HierarchicalBootstrap::jackknife`]. Leaving a unit out
/// changes one dataset's difference only, so each value is the mean of the differences with
/// that one replaced (or, for a dataset, removed).
fn jackknife(x: &[Nested], y: &[Nested], levels: Levels) -> Vec<f64> {
    let (mx, my): (Vec<f64>, Vec<f64>) = x.iter().zip(y).map(|(a, b)| (nested_mean(a), nested_mean(b))).unzip();
    let diffs: Vec<f64> = mx.iter().zip(&my).map(|(a, b)| a - b).collect();
    if levels.datasets {
        return (0..diffs.len()).map(|d| mean(&without(&diffs, d))).collect();
    }
    let mut out = Vec::new();
    for (is_x, side) in [(true, x), (false, y)] {
        for (d, nested) in side.iter().enumerate() {
            // a pretraining seed out where there are several, else a fine-tuning seed
            let leave_outs: Vec<Nested> = match nested.as_slice() {
                [runs] => (0..runs.len()).map(|i| vec![without(runs, i)]).collect(),
                _ => (0..nested.len()).map(|p| without(nested, p)).collect(),
            };
            if leave_outs.len() < 2 {
                continue;
            }
            for left in leave_outs {
                let mut changed = diffs.clone();
                changed[d] = if is_x {
                    nested_mean(&left) - my[d]
                } else {
                    mx[d] - nested_mean(&left)
                };
                out.push(mean(&changed));
            }
        }
    }
    out
}

/// `v` without its element `i`.
fn without<T: Clone>(v: &[T], i: usize) -> Vec<T> {
    v.iter()
        .enumerate()
        .filter(|(k, _)| *k != i)
        .map(|(_, t)| t.clone())
        .collect()
}
