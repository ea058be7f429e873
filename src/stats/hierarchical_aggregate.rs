//! The hierarchical bootstrap of a system's aggregates over tasks (rliable's mean, median, IQM
//! and optimality gap), resampling the levels of the design as [`super::hierarchical`] does for
//! differences: datasets (optional), then the system's pretraining seeds, then the fine-tuning
//! seeds of each drawn one, with the test instances of a dataset resampled too where every run
//! has them. `aggregate.csv` resamples runs within tasks as if every run were its own
//! pretraining run; with several pretraining seeds per system, this is the interval to read.

use rand::RngCore;
use rayon::prelude::*;

use super::describe::{iqm, mean};
use super::hierarchical::{resample_instances, values_of, Levels, Nested, NestedIx, Stratum};
use crate::rng::{below_u32_with, rejection_threshold, Fast};

/// The aggregates, in the order of their values: mean and median of the per-task scores (each
/// task's score the mean over pretraining seeds of the mean over fine-tuning seeds), IQM and
/// optimality gap (γ = 1) of all the runs pooled.
pub const AGGREGATES: [&str; 4] = ["mean", "median", "iqm", "optimality_gap"];

/// One system's aggregates on the data and over the resamples.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateBootstrap {
    /// The aggregates on the data, in [`AGGREGATES`]' order.
    pub estimates: [f64; 4],
    /// Their resampled values, one vector per aggregate.
    pub star: [Vec<f64>; 4],
    /// The levels resampled.
    pub levels: Levels,
}

/// The four aggregates of per-task run values (`tasks[t]` by pretraining seed).
pub fn aggregates(tasks: &[Nested]) -> [f64; 4] {
    let mut task_means: Vec<f64> = tasks.iter().map(super::hierarchical::nested_mean).collect();
    let runs: Vec<f64> = tasks.iter().flatten().flatten().copied().collect();
    task_means.sort_by(f64::total_cmp);
    let median = super::describe::quantile_sorted(&task_means, 0.5);
    let gap = 1.0 - mean(&runs.iter().map(|v| v.min(1.0)).collect::<Vec<_>>());
    [mean(&task_means), median, iqm(&runs), gap]
}

/// Resamples per parallel chunk (each with its own stream, drawn in order).
const CHUNK: usize = 64;

/// `reps` hierarchical resamples of each system's aggregates over `strata` (`systems[s][d]`: its
/// runs on stratum d; every system has runs on every stratum). A replicate draws the datasets
/// (when `resample_datasets` and there are several), then for each drawn dataset its instances
/// (where it has an instance level) once for every system, then each system's pretraining
/// seeds and their fine-tuning seeds.
pub fn hierarchical_bootstrap_aggregates(
    strata: &[Stratum],
    systems: &[Vec<NestedIx>],
    resample_datasets: bool,
    reps: usize,
    rng: &mut impl RngCore,
) -> Vec<AggregateBootstrap> {
    let m = strata.len();
    let datasets = resample_datasets && m > 1;
    let chunks: Vec<(usize, Fast)> = (0..reps.div_ceil(CHUNK)).map(|c| (c, Fast::from_stream(rng))).collect();
    // per chunk, per system, per aggregate: the chunk's replicates
    let per_chunk: Vec<Vec<[Vec<f64>; 4]>> = chunks
        .into_par_iter()
        .map(|(c, mut rng)| {
            let n = CHUNK.min(reps - c * CHUNK);
            let mut out: Vec<[Vec<f64>; 4]> = vec![Default::default(); systems.len()];
            let mut drawn: Vec<Vec<Nested>> = vec![vec![Vec::new(); m]; systems.len()];
            let (mut run_values, mut weights) = (Vec::new(), Vec::new());
            let m_threshold = rejection_threshold(m.max(1) as u32);
            let mut positions: Vec<usize> = (0..m).collect();
            for _ in 0..n {
                if datasets {
                    for d in positions.iter_mut() {
                        *d = below_u32_with(&mut rng, m as u32, m_threshold) as usize;
                    }
                }
                for (k, &d) in positions.iter().enumerate() {
                    let scores: &[f64] = match &strata[d].instances {
                        None => &strata[d].scores,
                        Some(level) => {
                            resample_instances(&strata[d], level, &mut weights, &mut run_values, &mut rng);
                            &run_values
                        }
                    };
                    for (s, sys) in systems.iter().enumerate() {
                        resample_runs(&sys[d], scores, &mut drawn[s][k], &mut rng);
                    }
                }
                for (s, tasks) in drawn.iter().enumerate() {
                    for (a, v) in aggregates(tasks).into_iter().enumerate() {
                        out[s][a].push(v);
                    }
                }
            }
            out
        })
        .collect();
    systems
        .iter()
        .enumerate()
        .map(|(s, sys)| {
            let tasks: Vec<Nested> = sys.iter().zip(strata).map(|(n, st)| values_of(n, &st.scores)).collect();
            let star = std::array::from_fn(|a| per_chunk.iter().flat_map(|c| c[s][a].iter().copied()).collect());
            AggregateBootstrap {
                estimates: aggregates(&tasks),
                star,
                levels: Levels::of(tasks.iter(), datasets, strata.iter().any(|st| st.instances.is_some())),
            }
        })
        .collect()
}

/// One resample of a system's runs on a task into `out` (by pretraining seed): its pretraining
/// seeds drawn with replacement, then the fine-tuning seeds of each drawn one.
fn resample_runs(nested: &NestedIx, scores: &[f64], out: &mut Nested, rng: &mut Fast) {
    let p = nested.len();
    out.resize_with(p, Vec::new);
    if p == 0 {
        return;
    }
    let p_threshold = rejection_threshold(p as u32);
    for slot in out.iter_mut() {
        let runs = &nested[below_u32_with(rng, p as u32, p_threshold) as usize];
        let n = runs.len() as u32;
        let threshold = rejection_threshold(n);
        slot.clear();
        slot.extend((0..n).map(|_| scores[runs[below_u32_with(rng, n, threshold) as usize] as usize]));
    }
}
