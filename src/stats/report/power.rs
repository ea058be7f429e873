//! `power.csv`: for each pair of systems, what the current design can detect and what it
//! would take to detect the effect seen (or a given one). The design is the dataset-level
//! paired t-test of `tests_datasets.csv` (on each dataset, the difference of the systems'
//! nested means at their selected learning rates); the spread of those differences splits into
//! what the seeds put in it — each system's pretraining and fine-tuning variance on each
//! dataset over its numbers of seeds ([`variance_components`] at the selected learning rate)
//! — and the rest, the true dataset-to-dataset variation (τ², which no number of seeds
//! removes). More seeds shrink the first part only; more datasets shrink both. Closed form
//! throughout (the noncentral t of [`crate::stats::power`]), at 80 % power and the report's
//! level.

use rayon::prelude::*;

use super::comparisons::system_pairs;
use super::design::dataset_runs;
use super::variance::variance_components;
use super::{ReportConfig, RunsIndex, Table};
use crate::artifacts::report::PowerRow;
use crate::error::Result;
use crate::stats::describe::{mean, mean_of, std};
use crate::stats::hierarchical::{nested_mean, Nested};
use crate::stats::power::{minimum_detectable_effect, ttest_power, units_needed};

/// The power the table aims for.
pub const TARGET_POWER: f64 = 0.8;

/// The most seeds of either kind the table searches before saying `inf`.
const MAX_SEEDS: usize = 10_000;

/// One system on one dataset at its selected learning rate: its nested mean, its pretraining
/// seeds, mean fine-tuning seeds per pretraining seed, and the variance its seeds put in the
/// nested mean per unit of each (σ²_p, σ²_f; 0 where not estimable).
#[derive(Debug, Clone, Copy)]
struct Cell {
    mean: f64,
    p: f64,
    f: f64,
    var_p: f64,
    var_f: f64,
}

impl Cell {
    /// The variance of the nested mean with `p` pretraining seeds of `f` fine-tuning seeds.
    fn noise(&self, p: f64, f: f64) -> f64 {
        self.var_p / p + self.var_f / (p * f)
    }
}

fn cell(nested: &Nested) -> Cell {
    let c = variance_components(std::slice::from_ref(nested), &[]);
    let zero = |v: f64| if v.is_finite() { v } else { 0.0 };
    Cell {
        mean: nested_mean(nested),
        p: nested.len() as f64,
        f: mean_of(nested.iter().map(|r| r.len() as f64)),
        var_p: zero(c.pretrain_seed),
        var_f: zero(c.finetune_seed),
    }
}

/// The power analysis of each pair over the datasets both have (normalised scores); `effect`
/// is `cfg.power_effect`, else the observed mean difference.
pub fn power_table(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
    let alpha = 1.0 - cfg.confidence;
    let cells: Vec<Vec<Option<Cell>>> = (0..ix.datasets.len())
        .into_par_iter()
        .map(|d| {
            let runs = dataset_runs(ix, d);
            runs.systems
                .iter()
                .map(|nested| {
                    nested.as_ref().map(|n| {
                        let values: Nested = n
                            .iter()
                            .map(|r| r.iter().map(|&k| runs.stratum.scores[k as usize]).collect())
                            .collect();
                        cell(&values)
                    })
                })
                .collect()
        })
        .collect();
    let rows: Vec<PowerRow> = system_pairs(ix)
        .into_iter()
        .map(|(i, j)| {
            let common: Vec<(Cell, Cell)> = cells.iter().filter_map(|c| Some((c[i]?, c[j]?))).collect();
            let diffs: Vec<f64> = common.iter().map(|(a, b)| a.mean - b.mean).collect();
            let n = diffs.len() as f64;
            let observed = mean(&diffs);
            let effect = cfg.power_effect.unwrap_or(observed).abs();
            let sd = std(&diffs);
            // what the seeds put in the variance of a dataset's difference, for p and f seeds
            // per system (the design's own where None)
            let noise = |p: Option<f64>, f: Option<f64>| {
                mean_of(common.iter().map(|(a, b)| {
                    a.noise(p.unwrap_or(a.p), f.unwrap_or(a.f)) + b.noise(p.unwrap_or(b.p), f.unwrap_or(b.f))
                }))
            };
            let tau2 = if sd.is_nan() {
                f64::NAN
            } else {
                (sd * sd - noise(None, None)).max(0.0)
            };
            let d_with = |p: Option<f64>, f: Option<f64>| effect / (tau2 + noise(p, f)).sqrt();
            let seeds_needed = |pretrain: bool| {
                let enough = |k: usize| {
                    let k = Some(k as f64);
                    let d = if pretrain { d_with(k, None) } else { d_with(None, k) };
                    ttest_power(d, n, alpha) >= TARGET_POWER
                };
                // power grows with the seeds: the first k that is enough, by doubling then halving
                if !enough(MAX_SEEDS) {
                    return f64::INFINITY;
                }
                let (mut lo, mut hi) = (0, 1);
                while !enough(hi) {
                    (lo, hi) = (hi, (2 * hi).min(MAX_SEEDS));
                }
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if enough(mid) {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                hi as f64
            };
            let (sx, sy) = (&ix.systems[i], &ix.systems[j]);
            let p_mean = mean_of(common.iter().flat_map(|(a, b)| [a.p, b.p]));
            let f_mean = mean_of(common.iter().flat_map(|(a, b)| [a.f, b.f]));
            PowerRow {
                model_x: sx.0.clone(),
                objective_x: sx.1.clone(),
                model_y: sy.0.clone(),
                objective_y: sy.1.clone(),
                n_datasets: common.len(),
                n_pretrain_seeds: p_mean,
                n_finetune_seeds: f_mean,
                observed_diff: observed,
                effect,
                sd_diff: sd,
                var_datasets: tau2,
                var_seeds: noise(None, None),
                power: ttest_power(effect / sd, n, alpha),
                mde: sd * minimum_detectable_effect(n, TARGET_POWER, alpha),
                datasets_needed: units_needed(effect / sd, TARGET_POWER, alpha).ceil(),
                pretrain_seeds_needed: if n < 2.0 { f64::NAN } else { seeds_needed(true) },
                finetune_seeds_needed: if n < 2.0 { f64::NAN } else { seeds_needed(false) },
            }
        })
        .collect();
    Table::of(&rows)
}
