//! `analysis report`: every CSV of the analysis, from a runs table. Each table is a pure
//! function of the organised runs ([`RunsIndex`]) and the configuration; randomness comes from
//! one stream per (table, system, dataset) derived from the seed, so results do not depend on
//! order or threads. The files appear together, only when all are written.

mod across;
mod aggregate_design;
mod comparisons;
mod design;
mod instances;
mod per_system;
mod power;
pub mod table;
mod variance;

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::artifacts::row::cells;
use crate::artifacts::ReportRow;
use crate::error::{Error, Result};
use crate::fsutil::{write_atomic, OwnedDir};
use crate::rng::{seeded, Rng};
pub use across::{aggregate_table, poi_table, profile_table, ranks_table};
pub use aggregate_design::aggregate_hierarchical;
pub use comparisons::{tests_paired, tests_unpaired};
pub use design::{
    dataset_means, dataset_runs, instances_missing, tests_datasets, tests_hierarchical, tests_interactions, DatasetRuns,
};
pub use instances::{
    instance_comparisons, instance_profiles, instance_tests, rank_clusters, ranking_clusters, InstanceComparison,
    InstanceProfile, InstanceView, Ranking, RANKING_ALPHA,
};
pub use per_system::{best_lr_table, bootstrap_table, expected_max_table, group_stats, missing_runs};
pub use power::{power_table, TARGET_POWER};
pub use table::{InstanceMatch, NanPolicy, RunsIndex, ScoreRanges};
pub use variance::{variance_components, variance_table, VarianceComponents};

/// An independent random stream for one (table, key…) from the master seed.
fn rng_for(seed: u64, parts: &[&str]) -> Rng {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    let mut stream = [0u8; 8];
    stream.copy_from_slice(&digest[..8]);
    seeded(seed, u64::from_le_bytes(stream))
}

/// (low, high) of a value computed on sign-flipped scores, back in the original sign.
fn back_ci(sign: f64, lo: f64, hi: f64) -> (f64, f64) {
    if sign > 0.0 {
        (lo, hi)
    } else {
        (-hi, -lo)
    }
}

/// Settings of a report.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Master seed of every resampling.
    pub seed: u64,
    /// Confidence level of every interval.
    pub confidence: f64,
    /// Failed runs: impute the chance score, or drop.
    pub nan_policy: NanPolicy,
    /// Thresholds of the performance profiles (default: quantiles of the pooled scores).
    pub taus: Option<Vec<f64>>,
    /// Resamples of the per-(system, dataset) bootstrap intervals.
    pub bootstrap_resamples: usize,
    /// Resamples of the stratified bootstrap of the aggregates.
    pub aggregate_reps: usize,
    /// Resamples of probability of improvement and performance profiles.
    pub poi_reps: usize,
    /// The effect (normalised score) `power.csv` asks the seeds and datasets needed for
    /// (default: each pair's observed difference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_effect: Option<f64>,
    /// Interactions to test, each four systems `MODEL/OBJECTIVE` [x₁, y₁, x₂, y₂]: the
    /// difference of differences (x₁ − y₁) − (x₂ − y₂) (`tests_interactions.csv`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interactions: Vec<[String; 4]>,
}

impl Default for ReportConfig {
    /// The defaults: seed 0, 95 %, 9,999 / 50,000 / 2,000 resamples, chance imputation.
    fn default() -> Self {
        Self {
            seed: 0,
            confidence: 0.95,
            nan_policy: NanPolicy::ImputeChance,
            taus: None,
            bootstrap_resamples: 9999,
            aggregate_reps: 50_000,
            poi_reps: 2000,
            power_effect: None,
            interactions: Vec::new(),
        }
    }
}

impl ReportConfig {
    /// Checks the fields once.
    pub fn validate(&self) -> Result<()> {
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::config(
                "confidence",
                format!("{} must be in (0, 1)", self.confidence),
            ));
        }
        if self.bootstrap_resamples == 0 || self.aggregate_reps == 0 || self.poi_reps == 0 {
            return Err(Error::config("resamples", "every resample count must be at least 1"));
        }
        Ok(())
    }
}

/// A CSV table: header and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File name, e.g. `group_stats.csv`.
    pub name: &'static str,
    /// Column names.
    pub header: Vec<&'static str>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table of `rows`: its name is `R::FILE`, its header `R`'s fields.
    pub fn of<R: ReportRow>(rows: &[R]) -> Result<Table> {
        let err = |e: crate::artifacts::row::RowError| Error::data(R::FILE, 0, e.to_string());
        let header = cells(&R::default()).map_err(err)?.into_iter().map(|(k, _)| k).collect();
        let rows = rows
            .iter()
            .map(|r| Ok(cells(r).map_err(err)?.into_iter().map(|(_, v)| v).collect()))
            .collect::<Result<_>>()?;
        Ok(Table {
            name: R::FILE,
            header,
            rows,
        })
    }

    /// The rows as `R` (this table must be `R::FILE`, with `R`'s columns).
    pub fn rows_of<R: ReportRow>(&self) -> Result<Vec<R>> {
        if self.name != R::FILE {
            return Err(Error::data(self.name, 0, format!("read as {}", R::FILE)));
        }
        let header = csv::StringRecord::from(self.header.clone());
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let row = csv::StringRecord::from(row.clone());
                crate::artifacts::read::deserialize_row(Path::new(self.name), &header, i + 2, &row)
            })
            .collect()
    }

    /// The CSV text (fields quoted when needed).
    pub fn to_csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| Error::data(self.name, 0, e.to_string());
        w.write_record(&self.header).map_err(err)?;
        for row in &self.rows {
            w.write_record(row.iter().map(|c| crate::csvcell::escape(c).into_owned()))
                .map_err(err)?;
        }
        let bytes = w.into_inner().map_err(|e| Error::data(self.name, 0, e.to_string()))?;
        String::from_utf8(bytes).map_err(|e| Error::data(self.name, 0, e.to_string()))
    }
}

/// A number as written in reports: shortest round-trip representation, NaN as `NaN`.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

/// One table of the report, built from the organised runs and the settings.
pub type TableBuilder = fn(&RunsIndex, &ReportConfig) -> Result<Table>;

/// Every table of the report, in the order written, with its file name.
pub const TABLES: [(&str, TableBuilder); 20] = [
    ("group_stats.csv", group_stats),
    ("best_lr.csv", best_lr_table),
    ("expected_max.csv", |ix, _| expected_max_table(ix)),
    ("bootstrap_ci.csv", bootstrap_table),
    ("tests_unpaired.csv", tests_unpaired),
    ("tests_paired.csv", tests_paired),
    ("tests_datasets.csv", tests_datasets),
    ("tests_hierarchical.csv", tests_hierarchical),
    ("tests_interactions.csv", tests_interactions),
    ("variance_components.csv", variance_table),
    ("power.csv", power_table),
    ("ranks.csv", |ix, _| ranks_table(ix)),
    ("aggregate.csv", aggregate_table),
    ("aggregate_hierarchical.csv", aggregate_hierarchical),
    ("poi.csv", poi_table),
    ("performance_profile.csv", profile_table),
    ("missing_runs.csv", |ix, _| missing_runs(ix)),
    ("instance_tests.csv", instance_tests),
    ("ranking_clusters.csv", ranking_clusters),
    ("instances_missing.csv", instances_missing),
];

/// Every table of the report.
pub fn build_tables(index: &RunsIndex, cfg: &ReportConfig) -> Result<Vec<Table>> {
    build_tables_with(index, cfg, |_| {})
}

/// Every table of the report, calling `starting(name)` before each (for a progress display:
/// on a large table the resampling tables take minutes).
pub fn build_tables_with(index: &RunsIndex, cfg: &ReportConfig, mut starting: impl FnMut(&str)) -> Result<Vec<Table>> {
    TABLES
        .iter()
        .map(|(name, build)| {
            starting(name);
            build(index, cfg)
        })
        .collect()
}

/// What `write_report` marks the folders it writes with.
pub const REPORT_WRITER: &str = "analysis report";

/// Writes every table, and the other `files` (name, bytes) such as plots, into `out`. A new
/// folder appears whole; an existing one must be empty or an earlier report's (its marker file,
/// see [`crate::fsutil::OwnedDir`]): the report's files are replaced, files it did not write are
/// left as they are, and anything else is refused before a file is written.
pub fn write_report(tables: &[Table], files: &[(String, Vec<u8>)], out: &Path) -> Result<()> {
    let stage = OwnedDir::create(out, REPORT_WRITER)?;
    for t in tables {
        write_atomic(stage.path().join(t.name), t.to_csv()?.as_bytes())?;
    }
    for (name, bytes) in files {
        write_atomic(stage.path().join(name), bytes)?;
    }
    stage.commit()
}
