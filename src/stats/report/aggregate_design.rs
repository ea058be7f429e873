//! `aggregate_hierarchical.csv`: each system's aggregates over tasks (mean, median, IQM,
//! optimality gap of normalised scores at the selected learning rates) with intervals from the
//! hierarchical bootstrap — pretraining seeds, then fine-tuning seeds, test instances where
//! given, and datasets in the `dataset_bootstrap = True` rows — where `aggregate.csv` resamples
//! runs within tasks as if each were its own pretraining run.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::design::{dataset_runs, restrict, DatasetRuns};
use super::tables::rng_for;
use super::{num, ReportConfig, RunsIndex, Table};
use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::hierarchical_aggregate::{hierarchical_bootstrap_aggregates, AGGREGATES};

/// The hierarchical intervals of every system's aggregates, `reps` = the report's `poi_reps`;
/// systems with the same datasets are resampled together (the same dataset and instance draws).
pub fn aggregate_hierarchical(ix: &RunsIndex, cfg: &ReportConfig) -> Table {
    let runs: Vec<DatasetRuns> = (0..ix.datasets.len())
        .into_par_iter()
        .map(|d| dataset_runs(ix, d))
        .collect();
    let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    for s in 0..ix.systems.len() {
        let own: Vec<usize> = (0..runs.len()).filter(|&d| runs[d].systems[s].is_some()).collect();
        if !own.is_empty() {
            groups.entry(own).or_default().push(s);
        }
    }
    let mut rows: BTreeMap<usize, Vec<Vec<String>>> = BTreeMap::new();
    for (common, members) in &groups {
        let (strata, systems) = restrict(&runs, common, members);
        let key: Vec<String> = common.iter().map(|&d| ix.datasets[d].clone()).collect();
        for datasets in [false, true] {
            let kind = if datasets { "datasets" } else { "within" };
            let mut rng = rng_for(cfg.seed, &["aggregate_hierarchical", kind, &key.join("\u{1f}")]);
            let boots = hierarchical_bootstrap_aggregates(&strata, &systems, datasets, cfg.poi_reps, &mut rng);
            for (&s, b) in members.iter().zip(boots) {
                let pretrain = systems[members.iter().position(|&m| m == s).unwrap_or(0)]
                    .iter()
                    .map(Vec::len)
                    .max()
                    .unwrap_or(0);
                for (a, name) in AGGREGATES.iter().enumerate() {
                    let (lo, hi) = ci_from_bootstrap_distribution(
                        b.estimates[a],
                        &b.star[a],
                        &[],
                        BootstrapMethod::Percentile,
                        cfg.confidence,
                    );
                    rows.entry(s).or_default().push(vec![
                        ix.systems[s].0.clone(),
                        ix.systems[s].1.clone(),
                        name.to_string(),
                        (if datasets { "True" } else { "False" }).to_string(),
                        b.levels.name(),
                        common.len().to_string(),
                        pretrain.to_string(),
                        num(b.estimates[a]),
                        b.star[a].len().to_string(),
                        num(lo),
                        num(hi),
                    ]);
                }
            }
        }
    }
    Table {
        name: "aggregate_hierarchical.csv",
        header: vec![
            "model",
            "objective",
            "aggregate",
            "dataset_bootstrap",
            "levels",
            "n_datasets",
            "n_pretrain_seeds",
            "estimate",
            "reps",
            "ci_low",
            "ci_high",
        ],
        // by system, then dataset level, then aggregate
        rows: rows
            .into_values()
            .flat_map(|mut r| {
                r.sort_by_key(|row| (row[3] == "True", AGGREGATES.iter().position(|a| *a == row[2])));
                r
            })
            .collect(),
    }
}
