//! A sweep run inside the calling process, one run after another, reusing what earlier runs
//! loaded (as a sweep worker does): for notebooks and scripts that want the results as values.
//! Runs with a record are read back, not redone; a run whose setup fails is recorded `failed`
//! and the sweep goes on, as with the local executor.

use super::config::{RunSpec, SweepConfig};
use super::state::{record, state_of, wants_run};
use super::worker::run_recorded;
use crate::error::Result;
use crate::finetune::{Reuse, RunResult};
use crate::runtime::progress_bar;

/// Every run of `specs` (records under `runs_dir`), in order: done ones read back, pending ones
/// (and failed ones with `retry_failed`) run here. `progress` draws a bar over the runs.
pub fn run_inline(
    specs: &[RunSpec],
    runs_dir: &std::path::Path,
    retry_failed: bool,
    progress: bool,
) -> Result<Vec<RunResult>> {
    let bar = progress_bar(progress, specs.len(), 0, "runs");
    let mut results = Vec::with_capacity(specs.len());
    // what one run loaded (dataset, checkpoint) serves the next, as in a sweep worker
    let mut reuse = Reuse::default();
    for spec in specs {
        // one read of the record: it decides, and it is the result when the run is not redone
        let done = match record(spec, runs_dir) {
            Err(_) if retry_failed => None,
            other => other?,
        };
        let result = match done {
            Some(r) if !wants_run(state_of(Some(&r)), retry_failed) => r,
            _ => run_recorded(spec, &mut reuse)?,
        };
        bar.inc(1);
        results.push(result);
    }
    bar.finish_and_clear();
    Ok(results)
}

impl SweepConfig {
    /// Every run of the sweep, run here where not done yet ([`run_inline`], with a progress bar).
    pub fn run_inline(&self) -> Result<Vec<RunResult>> {
        run_inline(&self.expand()?, &self.runs_dir(), false, true)
    }
}
