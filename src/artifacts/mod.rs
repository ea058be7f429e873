//! The files that cross from one journey to another, one type each, read and written only
//! through serde: a renamed column is a compile error, and each column is named in one place.
//!
//! | file | written by | read by | type |
//! |---|---|---|---|
//! | `runs.csv` (runs table) | fine-tuning records, `sweep collect`, `import encodeval`, the study | the analysis, notebooks | [`RunRow`] |
//! | `result.json` | a fine-tuning run | sweeps, the study, notebooks | [`RunResult`] |
//! | `meta.csv` (task metadata) | the study | the analysis | [`TaskMetaRow`] |
//! | the analysis report's CSVs (`best_lr.csv`, `tests_*.csv`, `poi.csv`, …) | `analysis report`, the study | the `analysis` CLI, plots, tests | [`report`] (one row type per file) |
//! | `instances.jsonl` | a fine-tuning run | the analysis (instance-level tests) | [`InstanceRow`] |

pub mod cells;
pub mod report;
pub mod row;
pub mod run_record;
pub mod runs_table;
pub mod task_meta;

pub use report::ReportRow;
pub use run_record::{InstanceRow, RunResult, Status};
pub use runs_table::{csv_text, RunRow};
pub use task_meta::TaskMetaRow;
