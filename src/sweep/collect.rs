//! The runs table of a sweep, from its run records: [`RunRow`]s with the sweep's columns
//! (`run_id`, `steps`, `wall_seconds`); one row per (finished run, split), in the sweep's order.

use std::path::Path;

use super::config::RunSpec;
use super::state::record;
use crate::artifacts::{csv_text, RunRow};
use crate::error::Result;
use crate::stats::runs::write_runs_table;

/// The table as CSV text, and the number of runs in it. A record that does not read whole is
/// an error (naming it), never left out.
pub(crate) fn runs_table(specs: &[RunSpec], runs_dir: &Path) -> Result<(String, usize)> {
    let mut rows = Vec::new();
    let mut n = 0;
    for spec in specs {
        let Some(r) = record(spec, runs_dir)? else { continue };
        n += 1;
        rows.extend(RunRow::of_result_in_sweep(&r));
    }
    Ok((csv_text(&rows, Some(&RunRow::template(true)))?, n))
}

/// Writes the table to `out` (`.csv`, or `.parquet` with the `polars` feature) atomically;
/// returns the number of runs.
pub fn collect(specs: &[RunSpec], runs_dir: &Path, out: &Path) -> Result<usize> {
    let (text, n) = runs_table(specs, runs_dir)?;
    write_runs_table(out, &text)?;
    Ok(n)
}

impl super::SweepConfig {
    /// Collects the sweep's finished runs into `out` ([`collect`]); returns the number of runs.
    pub fn collect(&self, out: impl AsRef<Path>) -> Result<usize> {
        collect(&self.expand()?, &self.runs_dir(), out.as_ref())
    }
}
