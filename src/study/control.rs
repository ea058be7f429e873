//! What the report shows before any finding: the positive control (every final pretrained
//! model against the random-init baseline of its size, per dataset and across datasets, with
//! tests whose units are the study's units of replication) and the fine-tuning diagnostic (every
//! (model, dataset) cell whose selected learning rate sits at an edge of its grid, where the
//! grid may have stopped before the optimum).
//!
//! Units of replication: on one dataset, a model's replicates are its
//! pretraining runs (each the mean over its fine-tuning seeds) when both sides have at least
//! two; otherwise its fine-tuning seeds, and the row says that the pretraining level is not
//! covered. Across datasets: the hierarchical bootstrap with datasets fixed (pretraining seeds,
//! then fine-tuning seeds, resampled) and the paired t over dataset means (datasets as units).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::describe::mean;
use crate::stats::hierarchical::{hierarchical_bootstrap_diff, nested_mean, Nested};
use crate::stats::multitest::{adjust, Correction};
use crate::stats::report::RunsIndex;
use crate::stats::ttest::{paired, welch};

/// One test of a model against random init.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ControlRow {
    /// The pretrained model.
    pub model: String,
    /// Its random-init baseline (the same size).
    pub baseline: String,
    /// A dataset, or `all`.
    pub scope: String,
    /// The test and its units.
    pub test: String,
    /// Units of the model's side (pretraining runs, seeds or datasets).
    pub n_model: usize,
    /// Units of the baseline's side.
    pub n_random: usize,
    /// Pretraining runs of the model on this scope.
    pub pretrain_seeds: usize,
    /// The model's mean normalised score.
    pub model_score: f64,
    /// The baseline's.
    pub random_score: f64,
    /// model − random.
    pub diff: f64,
    /// Lower end of its interval.
    pub diff_lo: f64,
    /// Upper end.
    pub diff_hi: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Holm-corrected within its family (the per-dataset rows of every model; the
    /// across-dataset rows of one test).
    pub p_holm: f64,
}

/// Whether a model passed the control, and why.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Gate {
    /// The model.
    pub model: String,
    /// Datasets on which it beats random init significantly (Holm).
    pub wins: usize,
    /// Datasets on which random init beats it significantly.
    pub losses: usize,
    /// Datasets tested.
    pub datasets: usize,
    /// At least half of the datasets won (a loss is counted, and shown, but does not fail it).
    pub passed: bool,
}

/// The positive control of a study.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Per-dataset rows, then the across-dataset rows.
    pub rows: Vec<ControlRow>,
    /// One gate per model.
    pub gates: BTreeMap<String, Gate>,
}

impl Control {
    /// Whether `model` passed (an untested model did not).
    pub fn passed(&self, model: &str) -> bool {
        self.gates.get(model).is_some_and(|g| g.passed)
    }

    /// The gate of one model in words: `clm: 2 of 3 datasets (bbc_news +0.120, ...)`.
    pub fn describe(&self, model: &str) -> String {
        let Some(g) = self.gates.get(model) else {
            return format!("`{model}` has no runs to compare with random init");
        };
        let per: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.model == model && r.scope != "all")
            .map(|r| {
                format!(
                    "{} {:+.3} (Holm p {})",
                    r.scope,
                    r.diff,
                    crate::stats::multitest::fmt_p(r.p_holm)
                )
            })
            .collect();
        format!(
            "`{model}` beats random init significantly on {} of {} datasets{} ({})",
            g.wins,
            g.datasets,
            if g.losses > 0 {
                format!(" and is significantly worse on {}", g.losses)
            } else {
                String::new()
            },
            per.join("; ")
        )
    }
}

/// Model `s`'s normalised scores on dataset `d` at its selected learning rate, by pretraining
/// seed (failed runs as the NaN policy says); `None` where it has none.
pub fn nested(ix: &RunsIndex, s: usize, d: usize) -> Option<Nested> {
    let g = ix.selected(s, d)?;
    let meta = ix.meta_of(d);
    let mut by: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (&(pretrain, _), &v) in &g.scores {
        if let Some(k) = ix.kept(d, v) {
            by.entry(pretrain).or_default().push(meta.normalised(k));
        }
    }
    (!by.is_empty()).then(|| by.into_values().collect())
}

/// Welch's t of x − y on one dataset, with its units and their counts.
pub(crate) struct OneDataset {
    /// The test.
    pub t: crate::stats::ttest::TTest,
    /// Whether the units are pretraining runs.
    pub by_pretrain: bool,
    /// Units of x and of y.
    pub n: (usize, usize),
}

/// [`OneDataset`] of x and y: the units are the pretraining runs (each the mean over its
/// fine-tuning seeds) when both sides have at least two, else every fine-tuning replicate.
pub(crate) fn welch_one_dataset(x: &Nested, y: &Nested, confidence: f64) -> OneDataset {
    let by_pretrain = x.len() >= 2 && y.len() >= 2;
    let units = |n: &Nested| -> Vec<f64> {
        if by_pretrain {
            n.iter().map(|runs| mean(runs)).collect()
        } else {
            n.concat()
        }
    };
    let (ux, uy) = (units(x), units(y));
    OneDataset {
        t: welch(&ux, &uy, confidence),
        by_pretrain,
        n: (ux.len(), uy.len()),
    }
}

/// Compares each of `models` with its random-init baseline (model, baseline) on every dataset
/// and across datasets.
pub fn positive_control(
    ix: &RunsIndex,
    models: &[(String, String)],
    confidence: f64,
    alpha: f64,
    reps: usize,
    seed: u64,
) -> Control {
    let mut control = Control::default();
    let mut per_dataset = Vec::new();
    let mut pooled = Vec::new();
    let mut dataset_level = Vec::new();
    for (i, (name, baseline)) in models.iter().enumerate() {
        let (Some(s), Some(r)) = (system_of(ix, name), system_of(ix, baseline)) else {
            continue;
        };
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (d, dataset) in ix.datasets.iter().enumerate() {
            let (Some(x), Some(y)) = (nested(ix, s, d), nested(ix, r, d)) else {
                continue;
            };
            let OneDataset { t, by_pretrain, n } = welch_one_dataset(&x, &y, confidence);
            per_dataset.push(ControlRow {
                model: name.clone(),
                baseline: baseline.clone(),
                scope: dataset.clone(),
                test: if by_pretrain {
                    "Welch t (pretraining runs)".into()
                } else {
                    "Welch t (fine-tuning seeds; one pretraining run)".into()
                },
                n_model: n.0,
                n_random: n.1,
                pretrain_seeds: x.len(),
                model_score: nested_mean(&x),
                random_score: nested_mean(&y),
                diff: nested_mean(&x) - nested_mean(&y),
                diff_lo: t.ci_low,
                diff_hi: t.ci_high,
                p: t.p,
                p_holm: f64::NAN,
            });
            xs.push(x);
            ys.push(y);
        }
        if xs.is_empty() {
            continue;
        }
        // across datasets, datasets fixed: the hierarchical bootstrap
        let mut rng = crate::rng::seeded(seed, 0x636f_6e74_0000 + i as u64);
        let b = hierarchical_bootstrap_diff(&xs, &ys, false, reps, &mut rng);
        let (lo, hi) =
            ci_from_bootstrap_distribution(b.estimate, &b.star, &[], BootstrapMethod::Percentile, confidence);
        let mx: Vec<f64> = xs.iter().map(nested_mean).collect();
        let my: Vec<f64> = ys.iter().map(nested_mean).collect();
        pooled.push(ControlRow {
            model: name.clone(),
            baseline: baseline.clone(),
            scope: "all".into(),
            test: format!("hierarchical bootstrap ({}; datasets fixed)", b.levels.name()),
            n_model: xs.iter().map(Vec::len).sum(),
            n_random: ys.iter().map(Vec::len).sum(),
            pretrain_seeds: xs.iter().map(Vec::len).max().unwrap_or(0),
            model_score: mean(&mx),
            random_score: mean(&my),
            diff: b.estimate,
            diff_lo: lo,
            diff_hi: hi,
            p: b.p_value(),
            p_holm: f64::NAN,
        });
        // across datasets, datasets as units: the paired t over dataset means
        let t = paired(&mx, &my, confidence);
        dataset_level.push(ControlRow {
            model: name.clone(),
            baseline: baseline.clone(),
            scope: "all".into(),
            test: "paired t (datasets)".into(),
            n_model: mx.len(),
            n_random: my.len(),
            pretrain_seeds: xs.iter().map(Vec::len).max().unwrap_or(0),
            model_score: mean(&mx),
            random_score: mean(&my),
            diff: mean(&mx) - mean(&my),
            diff_lo: t.ci_low,
            diff_hi: t.ci_high,
            p: t.p,
            p_holm: f64::NAN,
        });
    }
    for family in [&mut per_dataset, &mut pooled, &mut dataset_level] {
        holm(family);
    }
    for (name, _) in models {
        let rows: Vec<&ControlRow> = per_dataset.iter().filter(|c| c.model == *name).collect();
        if rows.is_empty() {
            continue;
        }
        let significant = |c: &&ControlRow| !c.p_holm.is_nan() && c.p_holm < alpha;
        let wins = rows.iter().filter(|c| significant(c) && c.diff > 0.0).count();
        let losses = rows.iter().filter(|c| significant(c) && c.diff < 0.0).count();
        control.gates.insert(
            name.clone(),
            Gate {
                model: name.clone(),
                wins,
                losses,
                datasets: rows.len(),
                passed: 2 * wins >= rows.len(),
            },
        );
    }
    control.rows = per_dataset.into_iter().chain(pooled).chain(dataset_level).collect();
    control
}

fn holm(rows: &mut [ControlRow]) {
    let p: Vec<f64> = rows.iter().map(|c| c.p).collect();
    for (c, q) in rows.iter_mut().zip(adjust(&p, Correction::Holm)) {
        c.p_holm = q;
    }
}

/// A (model, dataset) cell's selected learning rate against its grid.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct LrCell {
    /// The model.
    pub model: String,
    /// The dataset.
    pub dataset: String,
    /// The learning rate chosen on the selection split.
    pub selected_lr: f64,
    /// The grid's smallest.
    pub grid_low: f64,
    /// The grid's largest.
    pub grid_high: f64,
    /// Learning rates in the grid.
    pub grid_size: usize,
    /// `low`, `high`, or empty (inside).
    pub edge: String,
}

/// Every (model, dataset) cell of `models` with its selected learning rate and whether that
/// is an edge of the cell's grid (a grid of one learning rate is all edge).
pub(crate) fn lr_cells(ix: &RunsIndex, models: &[String]) -> Vec<LrCell> {
    let mut v = Vec::new();
    for name in models {
        let Some(s) = system_of(ix, name) else { continue };
        for (d, dataset) in ix.datasets.iter().enumerate() {
            let (Some((select, _)), Some((lr, _))) = (ix.protocol(s, d), ix.best(s, d)) else {
                continue;
            };
            let grid = ix.lrs(s, d, &select);
            let (Some(&lo), Some(&hi)) = (grid.first(), grid.last()) else {
                continue;
            };
            let edge = if lr == hi {
                "high"
            } else if lr == lo {
                "low"
            } else {
                ""
            };
            v.push(LrCell {
                model: name.clone(),
                dataset: dataset.clone(),
                selected_lr: lr,
                grid_low: lo,
                grid_high: hi,
                grid_size: grid.len(),
                edge: edge.into(),
            });
        }
    }
    v
}

/// The system of the runs table named `model` (whatever its objective).
pub fn system_of(ix: &RunsIndex, model: &str) -> Option<usize> {
    ix.systems.iter().position(|(m, _)| m == model)
}
