//! The files that cross from one journey to another, one type each, read and written only
//! through serde: a renamed column is a compile error, and each column is named in one place.
//!
//! | file | written by | read by | type |
//! |---|---|---|---|
//! | `runs.csv` (runs table) | fine-tuning records, `sweep collect`, `import encodeval`, the study | the analysis, notebooks | [`RunRow`] |
//! | `result.json` | a fine-tuning run | sweeps, the study, notebooks | [`RunResult`] |
//! | `meta.csv` (task metadata) | the study | the analysis | [`TaskMetaRow`] |
//! | the analysis report's CSVs (`best_lr.csv`, `tests_*.csv`, `poi.csv`, …) | `analysis report`, the study | the `analysis` CLI, plots, tests | [`report`] (one row type per file) |
//! | the study's own tables: `control.csv`, `lr_selection.csv`, `findings.csv`, `models.csv`, `pretraining_losses.csv`, `probe.csv` | the study | readers of its report | `study::control::ControlRow`, `study::control::LrCell`, `study::findings::Comparison`, `study::arms::Model`, `study::losses::LossPoint`, `study::probe::ProbeRow` (each written only by the study, so kept beside it) |
//! | `metrics.jsonl` (training curve) | pretraining, fine-tuning | notebooks, the study's `pretraining_losses.csv`, a resumed run | [`StepMetrics`], [`FinetuneStepMetrics`] |
//! | `instances.jsonl` | a fine-tuning run | the analysis (instance-level tests) | [`InstanceRow`] |

pub mod cells;
pub mod metrics;
pub mod read;
pub mod report;
pub mod row;
pub mod run_record;
pub mod runs_table;
pub mod task_meta;

pub use metrics::{FinetuneStepMetrics, StepMetrics};
pub use read::read_report;
pub use report::ReportRow;
pub use run_record::{InstanceRow, RunResult, Status};
pub use runs_table::RunRow;
pub use task_meta::TaskMetaRow;

use serde::Serialize;

use crate::error::{Error, Result};

/// `rows` as CSV text under their header (the serialized fields' names, never written by hand),
/// every cell escaped against spreadsheet formulas ([`crate::csvcell::escape_csv_text`]); with
/// no rows, `empty_header`'s header alone, or nothing.
pub fn csv_text<T: Serialize>(rows: &[T], empty_header: Option<&T>) -> Result<String> {
    let err = |e: String| Error::data("<csv>", 0, e);
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows.iter().chain(empty_header.filter(|_| rows.is_empty())) {
        w.serialize(row).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| err(e.to_string()))?;
    let text = match rows.is_empty() {
        true => text.lines().next().map_or(String::new(), |h| format!("{h}\n")),
        false => text,
    };
    crate::csvcell::escape_csv_text(&text)
}
