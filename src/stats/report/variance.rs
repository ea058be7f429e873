//! `variance_components.csv`: where the spread of a system's scores on a dataset comes from —
//! the learning rate, the pretraining seed, the fine-tuning seed, and the sampling of the test
//! set — a stability measure the paper does not have. Method-of-moments estimates of a nested
//! design (learning rate ⊃ pretraining seed ⊃ fine-tuning seed) on the report split, each
//! clamped at 0 [ours, the textbook nested ANOVA with unequal counts replaced by their means];
//! the test-sampling variance is the mean over runs of each score's first-order variance over
//! resamples of its instances ([`InstanceValues::sampling_variance`]), NaN without instances.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::{ReportConfig, RunsIndex, Table};
use crate::artifacts::report::VarianceRow;
use crate::error::Result;
use crate::stats::describe::{mean, mean_of};
use crate::stats::instances::InstanceValues;

/// The variance components of one (system, dataset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VarianceComponents {
    /// Learning rates with runs.
    pub n_lr: usize,
    /// Most pretraining seeds at one learning rate.
    pub n_pretrain_seeds: usize,
    /// Mean fine-tuning seeds per (learning rate, pretraining seed).
    pub n_finetune_seeds: f64,
    /// Variance of the true learning-rate means.
    pub lr: f64,
    /// Variance between pretraining seeds (NaN with one per learning rate).
    pub pretrain_seed: f64,
    /// Variance between fine-tuning seeds of one pretraining run.
    pub finetune_seed: f64,
    /// Variance of a run's score over test sets (NaN without instances).
    pub test_sampling: f64,
}

impl VarianceComponents {
    /// The components in order (learning rate, pretraining seed, fine-tuning seed, test set).
    pub fn parts(&self) -> [f64; 4] {
        [self.lr, self.pretrain_seed, self.finetune_seed, self.test_sampling]
    }

    /// Each component's share of their sum (over the estimable ones; NaN for the others).
    pub fn shares(&self) -> [f64; 4] {
        let total: f64 = self.parts().iter().filter(|v| v.is_finite()).sum();
        self.parts().map(|v| {
            if v.is_finite() && total > 0.0 {
                v / total
            } else {
                f64::NAN
            }
        })
    }
}

/// The components from the scores at each learning rate by pretraining seed
/// (`cells[lr][p]` = that pretraining run's fine-tuning replicates) and the runs' test-sampling
/// variances.
pub fn variance_components(cells: &[Vec<Vec<f64>>], sampling: &[f64]) -> VarianceComponents {
    let pooled = |v: &[f64]| -> (f64, f64) {
        let m = mean(v);
        (
            v.iter().map(|x| (x - m) * (x - m)).sum(),
            v.len().saturating_sub(1) as f64,
        )
    };
    // fine-tuning seeds: the pooled within-pretraining-run variance
    let (ss, df) = cells
        .iter()
        .flatten()
        .map(|runs| pooled(runs))
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let finetune = if df > 0.0 { ss / df } else { f64::NAN };
    let f_mean = mean_of(cells.iter().flatten().map(|r| r.len() as f64));
    let ft = if finetune.is_nan() { 0.0 } else { finetune };
    // pretraining seeds: the variance of pretraining means within a learning rate, less what
    // the fine-tuning seeds put in it
    let between: Vec<f64> = cells
        .iter()
        .filter(|p| p.len() > 1)
        .map(|p| {
            let means: Vec<f64> = p.iter().map(|r| mean(r)).collect();
            let (s, d) = pooled(&means);
            s / d
        })
        .collect();
    let pretrain = if between.is_empty() {
        f64::NAN
    } else {
        (mean(&between) - ft / f_mean).max(0.0)
    };
    let p_mean = mean_of(cells.iter().map(|p| p.len() as f64));
    // learning rates: the variance of the learning-rate means, less what the seeds put in it
    let lr_means: Vec<f64> = cells
        .iter()
        .map(|p| mean(&p.iter().map(|r| mean(r)).collect::<Vec<_>>()))
        .collect();
    let lr = if lr_means.len() > 1 {
        let (s, d) = pooled(&lr_means);
        let pt = if pretrain.is_nan() { 0.0 } else { pretrain };
        (s / d - pt / p_mean - ft / (p_mean * f_mean)).max(0.0)
    } else {
        f64::NAN
    };
    let sampled: Vec<f64> = sampling.iter().copied().filter(|v| v.is_finite()).collect();
    VarianceComponents {
        n_lr: cells.len(),
        n_pretrain_seeds: cells.iter().map(Vec::len).max().unwrap_or(0),
        n_finetune_seeds: f_mean,
        lr,
        pretrain_seed: pretrain,
        finetune_seed: finetune,
        test_sampling: if sampled.is_empty() { f64::NAN } else { mean(&sampled) },
    }
}

/// [`variance_components`] per (system, dataset) over every learning rate of the report split
/// (raw metric scale; failed runs as the NaN policy says).
pub fn variance_table(ix: &RunsIndex, _cfg: &ReportConfig) -> Result<Table> {
    let keys: Vec<(usize, usize)> = (0..ix.systems.len())
        .flat_map(|s| (0..ix.datasets.len()).map(move |d| (s, d)))
        .collect();
    let rows: Vec<VarianceRow> = keys
        .into_par_iter()
        .filter_map(|(s, d)| {
            let (_, report) = ix.protocol(s, d)?;
            let mut cells = Vec::new();
            let mut sampling = Vec::new();
            for lr in ix.lrs(s, d, &report) {
                let Some(g) = ix.group(s, d, &report, lr) else { continue };
                let mut by_pretrain: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for (&replicate, &v) in &g.scores {
                    if let Some(kept) = ix.kept(d, v) {
                        by_pretrain.entry(replicate.0).or_default().push(kept);
                    }
                    if let Some(values) = ix.instances_of(s, d, &report, lr, replicate) {
                        sampling.push(InstanceValues::sampling_variance(values));
                    }
                }
                if !by_pretrain.is_empty() {
                    cells.push(by_pretrain.into_values().collect::<Vec<_>>());
                }
            }
            if cells.is_empty() {
                return None;
            }
            let c = variance_components(&cells, &sampling);
            let [share_lr, share_p, share_f, share_t] = c.shares();
            let (m, o) = &ix.systems[s];
            Some(VarianceRow {
                model: m.clone(),
                objective: o.clone(),
                dataset: ix.datasets[d].clone(),
                split: report,
                n_lr: c.n_lr,
                n_pretrain_seeds: c.n_pretrain_seeds,
                n_finetune_seeds: c.n_finetune_seeds,
                var_lr: c.lr,
                var_pretrain_seed: c.pretrain_seed,
                var_finetune_seed: c.finetune_seed,
                var_test_sampling: c.test_sampling,
                share_lr,
                share_pretrain_seed: share_p,
                share_finetune_seed: share_f,
                share_test_sampling: share_t,
            })
        })
        .collect();
    Table::of(&rows)
}
