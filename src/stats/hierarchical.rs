//! The hierarchical bootstrap of a difference between two systems: resample the levels of the
//! design that exist, outermost first — datasets (optional, as rliable's task bootstrap), then
//! within each dataset and system its pretraining seeds, then within each drawn pretraining
//! seed its fine-tuning seeds. Rows of a runs table are not independent (the seeds of one
//! pretraining run share its weights, the runs of one dataset its difficulty); resampling them
//! as if they were (pseudo-replication) makes intervals too narrow.

use rand::RngCore;
use rayon::prelude::*;

use crate::rng::{below_u32_with, rejection_threshold, Fast};
use crate::stats::describe::mean;
use crate::stats::instances::InstanceValues;

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
    /// Test instances drawn with replacement (on the datasets that have per-instance scores).
    pub instances: bool,
}

impl Levels {
    /// The levels a bootstrap of these systems' runs (`nested` over every system and dataset)
    /// resamples: pretraining seeds where some system has several on a dataset, fine-tuning
    /// seeds where some pretraining run has several.
    pub fn of<'a>(nested: impl Iterator<Item = &'a Nested> + Clone, datasets: bool, instances: bool) -> Self {
        Self {
            datasets,
            pretrain_seeds: nested.clone().any(|n| n.len() > 1),
            finetune_seeds: nested.flatten().any(|runs| runs.len() > 1),
            instances,
        }
    }

    /// `datasets+pretrain_seeds+finetune_seeds`, the resampled ones outermost first (`none`).
    pub fn name(self) -> String {
        let names: Vec<&str> = [
            (self.datasets, "datasets"),
            (self.pretrain_seeds, "pretrain_seeds"),
            (self.finetune_seeds, "finetune_seeds"),
            (self.instances, "instances"),
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

/// The bootstrap distribution of a contrast between systems (a difference x − y: the mean
/// over datasets of the difference of their [`nested_mean`]s) with what its intervals need.
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

/// One dataset of a hierarchical bootstrap: the normalised score of every run any system
/// uses there, and, where the test set is resampled too, each run's per-instance values.
#[derive(Debug, Clone)]
pub struct Stratum<'a> {
    /// Normalised score of each run.
    pub scores: Vec<f64>,
    /// The instance level, if this dataset has one.
    pub instances: Option<InstanceLevel<'a>>,
}

/// The instance level of a [`Stratum`]: each run's per-instance values (the same instances,
/// in the same order, for every run) and the affine map of a raw score to its normalised one
/// (`scale · raw + shift`: the metric's sign and the normalisation).
#[derive(Debug, Clone)]
pub struct InstanceLevel<'a> {
    /// Run → its values, aligned with [`Stratum::scores`]; `None` for a run whose score
    /// stays as it is (a failed run imputed with chance).
    pub runs: Vec<Option<&'a InstanceValues>>,
    /// Normalised = `scale · raw + shift`.
    pub scale: f64,
    /// See `scale`.
    pub shift: f64,
}

/// A system's runs on one stratum by pretraining seed: `nested[p]` holds the indices (into
/// [`Stratum::scores`]) of the fine-tuning replicates of its p-th pretraining seed.
pub type NestedIx = Vec<Vec<u32>>;

/// `reps` hierarchical resamples of x − y over their common datasets (`x[d]` and `y[d]` the same
/// dataset), datasets drawn too when `resample_datasets` (and there are several), from one
/// stream `rng`: [`hierarchical_bootstrap_pairs`] for one pair of systems given by value.
pub fn hierarchical_bootstrap_diff(
    x: &[Nested],
    y: &[Nested],
    resample_datasets: bool,
    reps: usize,
    rng: &mut impl RngCore,
) -> HierarchicalBootstrap {
    let mut strata = Vec::new();
    let mut systems = vec![Vec::new(), Vec::new()];
    for (a, b) in x.iter().zip(y) {
        let mut scores = Vec::new();
        for (s, nested) in [a, b].into_iter().enumerate() {
            let ix: NestedIx = nested
                .iter()
                .map(|runs| {
                    runs.iter()
                        .map(|&v| {
                            scores.push(v);
                            (scores.len() - 1) as u32
                        })
                        .collect()
                })
                .collect();
            systems[s].push(ix);
        }
        strata.push(Stratum {
            scores,
            instances: None,
        });
    }
    let mut out = hierarchical_bootstrap_pairs(&strata, &systems, &[(0, 1)], resample_datasets, reps, rng);
    out.swap_remove(0)
}

/// Resamples per parallel chunk; each chunk has its own stream, drawn in order from the
/// caller's, so results do not depend on threads.
const CHUNK: usize = 64;

/// A contrast between systems: (system index, weight) terms, e.g. x − y = `[(x, 1), (y, −1)]`,
/// or the interaction (a₁ − a₂) − (b₁ − b₂) = `[(a₁, 1), (a₂, −1), (b₁, −1), (b₂, 1)]`.
pub type Contrast = Vec<(usize, f64)>;

/// The contrast of a pair, x − y.
pub(crate) fn pair_contrast(x: usize, y: usize) -> Contrast {
    vec![(x, 1.0), (y, -1.0)]
}

/// The hierarchical bootstrap of x − y for every pair of `pairs` (indices into `systems`):
/// [`hierarchical_bootstrap_contrasts`] of their `pair_contrast`s.
pub fn hierarchical_bootstrap_pairs(
    strata: &[Stratum],
    systems: &[Vec<NestedIx>],
    pairs: &[(usize, usize)],
    resample_datasets: bool,
    reps: usize,
    rng: &mut impl RngCore,
) -> Vec<HierarchicalBootstrap> {
    let contrasts: Vec<Contrast> = pairs.iter().map(|&(x, y)| pair_contrast(x, y)).collect();
    hierarchical_bootstrap_contrasts(strata, systems, &contrasts, resample_datasets, reps, rng)
}

/// The hierarchical bootstrap of every contrast (a weighted sum of systems' scores; indices
/// into `systems`), sharing each replicate's resample of a system across all its contrasts
/// (as rliable's independent stratified bootstrap of probability of improvement does). `systems[s][d]` is
/// system s's runs on stratum d; every system has runs on every stratum. A replicate draws
/// the datasets (when `resample_datasets` and there are several; the same draws for every
/// system, so pairs stay paired); then for each drawn dataset, once per occurrence, a resample
/// of its test instances where it has an instance level (the same resample for every run and
/// system: the test set is shared); then per system its pretraining seeds, then within each
/// drawn one its fine-tuning seeds. A replicate's value is the mean over drawn datasets of the
/// contrast of resampled [`nested_mean`]s.
pub fn hierarchical_bootstrap_contrasts(
    strata: &[Stratum],
    systems: &[Vec<NestedIx>],
    contrasts: &[Contrast],
    resample_datasets: bool,
    reps: usize,
    rng: &mut impl RngCore,
) -> Vec<HierarchicalBootstrap> {
    let m = strata.len();
    let datasets = resample_datasets && m > 1;
    let values: Vec<Vec<Nested>> = systems
        .iter()
        .map(|sys| {
            sys.iter()
                .zip(strata)
                .map(|(nested, st)| values_of(nested, &st.scores))
                .collect()
        })
        .collect();
    let chunks: Vec<(usize, Fast)> = (0..reps.div_ceil(CHUNK)).map(|c| (c, Fast::from_stream(rng))).collect();
    // star[chunk] = per pair, that chunk's replicates
    let per_chunk: Vec<Vec<Vec<f64>>> = chunks
        .into_par_iter()
        .map(|(c, mut rng)| {
            let n = CHUNK.min(reps - c * CHUNK);
            let mut out = vec![Vec::with_capacity(n); contrasts.len()];
            // drawn[k][s]: system s's resampled mean on the k-th drawn dataset
            let mut drawn = vec![vec![0.0; systems.len()]; m];
            let mut run_values: Vec<f64> = Vec::new();
            let mut weights: Vec<f64> = Vec::new();
            let m_threshold = rejection_threshold(m.max(1) as u32);
            for _ in 0..n {
                for (k, slot) in drawn.iter_mut().enumerate() {
                    let d = if datasets {
                        below_u32_with(&mut rng, m as u32, m_threshold) as usize
                    } else {
                        k
                    };
                    let scores: &[f64] = match &strata[d].instances {
                        None => &strata[d].scores,
                        Some(level) => {
                            resample_instances(&strata[d], level, &mut weights, &mut run_values, &mut rng);
                            &run_values
                        }
                    };
                    for (value, sys) in slot.iter_mut().zip(systems) {
                        *value = resampled_mean(&sys[d], scores, &mut rng);
                    }
                }
                for (p, contrast) in contrasts.iter().enumerate() {
                    let total: f64 = drawn
                        .iter()
                        .map(|slot| contrast.iter().map(|&(s, w)| w * slot[s]).sum::<f64>())
                        .sum();
                    out[p].push(if m == 0 { f64::NAN } else { total / m as f64 });
                }
            }
            out
        })
        .collect();
    let instances = strata.iter().any(|s| s.instances.is_some());
    contrasts
        .iter()
        .enumerate()
        .map(|(p, contrast)| {
            let terms: Vec<(&[Nested], f64)> = contrast.iter().map(|&(s, w)| (values[s].as_slice(), w)).collect();
            let levels = Levels::of(terms.iter().flat_map(|(v, _)| v.iter()), datasets, instances);
            HierarchicalBootstrap {
                estimate: contrast_value(&terms),
                star: per_chunk.iter().flat_map(|c| c[p].iter().copied()).collect(),
                jackknife: jackknife(&terms, levels),
                levels,
            }
        })
        .collect()
}

/// A contrast on the data: the mean over datasets of Σ w · [`nested_mean`].
fn contrast_value(terms: &[(&[Nested], f64)]) -> f64 {
    let m = terms.first().map_or(0, |(v, _)| v.len());
    mean(
        &(0..m)
            .map(|d| terms.iter().map(|(v, w)| w * nested_mean(&v[d])).sum())
            .collect::<Vec<f64>>(),
    )
}

/// The scores a system's indices point to.
pub(crate) fn values_of(nested: &NestedIx, scores: &[f64]) -> Nested {
    nested
        .iter()
        .map(|runs| runs.iter().map(|&r| scores[r as usize]).collect())
        .collect()
}

/// One resample of a stratum's test instances (multiplicities in `weights`) and every run's
/// normalised score on it (in `out`).
pub(crate) fn resample_instances(
    stratum: &Stratum,
    level: &InstanceLevel,
    weights: &mut Vec<f64>,
    out: &mut Vec<f64>,
    rng: &mut Fast,
) {
    let n = level.runs.iter().flatten().next().map_or(0, |r| r.len());
    draw_weights(n, weights, rng);
    out.clear();
    out.extend(level.runs.iter().zip(&stratum.scores).map(|(r, &score)| match r {
        Some(r) => level.scale * r.weighted_with_total(weights, n as f64) + level.shift,
        None => score,
    }));
}

/// The multiplicities of one resample of n instances (n draws with replacement), in `weights`.
pub(crate) fn draw_weights(n: usize, weights: &mut Vec<f64>, rng: &mut Fast) {
    weights.clear();
    weights.resize(n, 0.0);
    let threshold = rejection_threshold(n.max(1) as u32);
    for _ in 0..n {
        weights[below_u32_with(rng, n as u32, threshold) as usize] += 1.0;
    }
}

/// [`nested_mean`] of one resample: pretraining seeds drawn with replacement, then the
/// fine-tuning seeds of each drawn one.
fn resampled_mean(nested: &NestedIx, scores: &[f64], rng: &mut Fast) -> f64 {
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
        let drawn: f64 = (0..n)
            .map(|_| scores[runs[below_u32_with(rng, n, threshold) as usize] as usize])
            .sum();
        sum += drawn / f64::from(n);
    }
    sum / p as f64
}

/// The leave-one-out values of [`HierarchicalBootstrap::jackknife`]. Leaving a unit out
/// changes one dataset's value only, so each value is the mean of the per-dataset values with
/// that one replaced (or, for a dataset, removed).
fn jackknife(terms: &[(&[Nested], f64)], levels: Levels) -> Vec<f64> {
    let m_count = terms.first().map_or(0, |(v, _)| v.len());
    let means: Vec<Vec<f64>> = terms.iter().map(|(v, _)| v.iter().map(nested_mean).collect()).collect();
    let per_dataset: Vec<f64> = (0..m_count)
        .map(|d| terms.iter().zip(&means).map(|((_, w), mu)| w * mu[d]).sum())
        .collect();
    let m = m_count as f64;
    let total: f64 = per_dataset.iter().sum();
    if levels.datasets {
        return (0..m_count).map(|d| (total - per_dataset[d]) / (m - 1.0)).collect();
    }
    let mut out = Vec::new();
    for (t, (side, w)) in terms.iter().enumerate() {
        for (d, nested) in side.iter().enumerate() {
            for left in leave_one_out_means(nested) {
                out.push((total + w * (left - means[t][d])) / m);
            }
        }
    }
    out
}

/// [`nested_mean`] with one unit left out, for each unit: a pretraining seed where there are
/// several, else a fine-tuning seed (none where there would be fewer than two values).
fn leave_one_out_means(nested: &Nested) -> Vec<f64> {
    match nested.as_slice() {
        [runs] if runs.len() > 1 => {
            let sum: f64 = runs.iter().sum();
            let n = runs.len() as f64;
            runs.iter().map(|v| (sum - v) / (n - 1.0)).collect()
        }
        [_] | [] => Vec::new(),
        _ => {
            let means: Vec<f64> = nested.iter().map(|runs| mean(runs)).collect();
            let sum: f64 = means.iter().sum();
            let n = means.len() as f64;
            means.iter().map(|v| (sum - v) / (n - 1.0)).collect()
        }
    }
}
