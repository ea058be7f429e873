//! The rows of the analysis report's CSV files (`analysis report`, the study's `analysis/`):
//! one struct per file, its fields the columns in order. The report builds its tables from
//! these rows; the `analysis` command line, the plots and the tests read them back by field.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A row of one of the report's files.
pub trait ReportRow: Serialize + DeserializeOwned + Default {
    /// The file's name.
    const FILE: &'static str;
}

mod across;
mod comparisons;
mod design;
mod runs;

pub use across::{AggregateRow, HierarchicalAggregateRow, ProfileRow, RankRow, RankingClusterRow};
pub use comparisons::{
    DatasetTestRow, HierarchicalTestRow, InstanceTestRow, InteractionTestRow, PairedTestRow, PoiRow, UnpairedTestRow,
};
pub use design::{PowerRow, VarianceRow};
pub use runs::{BestLrRow, BootstrapRow, ExpectedMaxRow, GroupStatsRow, InstanceMissingRow, MissingRunRow};
