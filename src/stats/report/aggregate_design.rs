//! `aggregate_hierarchical.csv`: each system's aggregates over tasks (mean, median, IQM,
//! optimality gap of normalised scores at the selected learning rates) with intervals from the
//! hierarchical bootstrap — pretraining seeds, then fine-tuning seeds, test instances where
//! given, and datasets in the `dataset_bootstrap = True` rows — where `aggregate.csv` resamples
//! runs within tasks as if each were its own pretraining run.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::design::{dataset_runs, restrict, DatasetRuns};
use super::rng_for;
use super::{ReportConfig, RunsIndex, Table};
use crate::artifacts::report::HierarchicalAggregateRow;
use crate::error::Result;
use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::hierarchical_aggregate::{hierarchical_bootstrap_aggregates, AGGREGATES};

/// The hierarchical intervals of every system's aggregates, `reps` = the report's `poi_reps`;
/// systems with the same datasets are resampled together (the same dataset and instance draws).
pub fn aggregate_hierarchical(ix: &RunsIndex, cfg: &ReportConfig) -> Result<Table> {
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
    let mut rows: BTreeMap<usize, Vec<HierarchicalAggregateRow>> = BTreeMap::new();
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
                    rows.entry(s).or_default().push(HierarchicalAggregateRow {
                        model: ix.systems[s].0.clone(),
                        objective: ix.systems[s].1.clone(),
                        aggregate: name.to_string(),
                        dataset_bootstrap: if datasets { "True" } else { "False" }.to_string(),
                        levels: b.levels.name().to_string(),
                        n_datasets: common.len(),
                        n_pretrain_seeds: pretrain,
                        estimate: b.estimates[a],
                        reps: b.star[a].len(),
                        ci_low: lo,
                        ci_high: hi,
                    });
                }
            }
        }
    }
    // by system, then dataset level, then aggregate
    let rows: Vec<HierarchicalAggregateRow> = rows
        .into_values()
        .flat_map(|mut r| {
            r.sort_by_key(|row| {
                (
                    row.dataset_bootstrap == "True",
                    AGGREGATES.iter().position(|a| *a == row.aggregate),
                )
            });
            r
        })
        .collect();
    Table::of(&rows)
}
