//! Where each run of a sweep stands, read from its record (`result.json`), and the plan: how
//! many runs are done, failed or pending, and how long the rest should take at the measured pace.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::config::RunSpec;
use crate::config::load_json;
use crate::error::{Error, Result};
use crate::finetune::{RunResult, Status};

/// A run's state.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// No record yet.
    Pending,
    /// Finished: ok or diverged (a diverged run is a result, not an error).
    Done(Status),
    /// Recorded as failed (rerun with `--retry-failed`).
    Failed,
    /// A record folder that does not read whole (see [`record`]); reported by every command,
    /// rerun (its folder replaced) with `--retry-failed`.
    Corrupt,
}

/// The record of `spec` under `runs_dir`: `None` when it has no folder yet; an error naming
/// the file when its folder is there but does not hold a whole record (`result.json` that
/// does not parse, or a missing `config.json` or `instances.jsonl`). Records are written in
/// one rename, so such a folder was damaged after the fact.
pub fn record(spec: &RunSpec, runs_dir: &Path) -> Result<Option<RunResult>> {
    let dir = runs_dir.join(&spec.run_id);
    if !dir.exists() {
        return Ok(None);
    }
    let fix = "rerun it with `sweep run --retry-failed` (which replaces the folder), or remove the folder";
    let result: RunResult = load_json(&dir.join("result.json")).map_err(|e| {
        Error::data(
            dir.join("result.json"),
            0,
            format!("run {} has a damaged record ({e}): {fix}", spec.index),
        )
    })?;
    for file in ["config.json", "instances.jsonl"] {
        if !dir.join(file).is_file() {
            return Err(Error::data(
                dir.join(file),
                0,
                format!("run {}'s record is incomplete: {file} is missing; {fix}", spec.index),
            ));
        }
    }
    Ok(Some(result))
}

/// The state of `spec`.
pub fn state(spec: &RunSpec, runs_dir: &Path) -> RunState {
    match record(spec, runs_dir) {
        Ok(r) => state_of(r.as_ref()),
        Err(_) => RunState::Corrupt,
    }
}

/// The state a record (or its absence) means.
pub(crate) fn state_of(record: Option<&RunResult>) -> RunState {
    match record {
        None => RunState::Pending,
        Some(r) if r.status == Status::Failed => RunState::Failed,
        Some(r) => RunState::Done(r.status),
    }
}

/// Whether a run in `state` is (re)run: pending ones, and failed or damaged ones with
/// `retry_failed`.
pub(crate) fn wants_run(state: RunState, retry_failed: bool) -> bool {
    match state {
        RunState::Pending => true,
        RunState::Failed | RunState::Corrupt => retry_failed,
        RunState::Done(_) => false,
    }
}

/// Counts and the time estimate of a sweep.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Plan {
    /// Runs in the sweep.
    pub total: usize,
    /// Finished `ok`.
    pub ok: usize,
    /// Finished `diverged`.
    pub diverged: usize,
    /// Recorded `failed`.
    pub failed: usize,
    /// Not run yet.
    pub pending: usize,
    /// Records that do not read whole: each one's problem (file and fix).
    pub corrupt: Vec<String>,
    /// Mean wall seconds of the finished runs.
    pub mean_run_seconds: Option<f64>,
    /// The pending runs' estimated seconds divided by `workers`: each pending run counts the
    /// mean of the finished runs on its checkpoint and dataset, else on its dataset, else of all.
    pub remaining_seconds: Option<f64>,
    /// Pending runs whose dataset has no finished run yet (their estimate is the overall mean).
    pub unmeasured_pending: usize,
}

impl Plan {
    /// What `sweep plan` prints: the counts, the damaged records, and the time left with
    /// `workers` runs at once.
    pub fn summary(&self, workers: usize) -> String {
        let mut s = format!(
            "{} runs: {} ok, {} diverged, {} failed, {} pending, {} damaged\n",
            self.total,
            self.ok,
            self.diverged,
            self.failed,
            self.pending,
            self.corrupt.len()
        );
        for c in &self.corrupt {
            s.push_str(&format!("damaged: {c}\n"));
        }
        match (self.mean_run_seconds, self.remaining_seconds) {
            (Some(m), Some(r)) => {
                s.push_str(&format!(
                    "mean run {m:.1} s; about {:.1} min left with {workers} worker(s)\n",
                    r / 60.0
                ));
                if self.unmeasured_pending > 0 {
                    s.push_str(&format!(
                        "({} pending runs are on datasets with no finished run yet: counted at the mean)\n",
                        self.unmeasured_pending
                    ));
                }
            }
            _ => s.push_str("no finished run yet to estimate the time from\n"),
        }
        s
    }
}

/// Mean wall seconds per key.
#[derive(Default)]
struct Means(HashMap<String, (f64, usize)>);

impl Means {
    fn add(&mut self, key: String, seconds: f64) {
        let e = self.0.entry(key).or_default();
        e.0 += seconds;
        e.1 += 1;
    }
    fn get(&self, key: &str) -> Option<f64> {
        self.0.get(key).map(|&(sum, n)| sum / n as f64)
    }
}

fn keys(spec: &RunSpec) -> (String, String) {
    let dataset = spec.config.task.dataset.clone();
    (
        format!("{}\n{dataset}", spec.config.model.checkpoint.display()),
        dataset,
    )
}

/// The plan of `specs` for `workers` parallel runs.
pub fn plan(specs: &[RunSpec], runs_dir: &Path, workers: usize) -> Plan {
    let mut p = Plan {
        total: specs.len(),
        ok: 0,
        diverged: 0,
        failed: 0,
        pending: 0,
        corrupt: Vec::new(),
        mean_run_seconds: None,
        remaining_seconds: None,
        unmeasured_pending: 0,
    };
    let (mut by_run, mut by_dataset, mut all) = (Means::default(), Means::default(), Means::default());
    let mut pending = Vec::new();
    for s in specs {
        match record(s, runs_dir) {
            Err(e) => p.corrupt.push(e.to_string()),
            Ok(None) => pending.push(s),
            Ok(Some(r)) => {
                match r.status {
                    Status::Ok => p.ok += 1,
                    Status::Diverged => p.diverged += 1,
                    Status::Failed => p.failed += 1,
                }
                if r.status != Status::Failed {
                    let (run, dataset) = keys(s);
                    by_run.add(run, r.wall_seconds);
                    by_dataset.add(dataset, r.wall_seconds);
                    all.add(String::new(), r.wall_seconds);
                }
            }
        }
    }
    p.pending = pending.len();
    p.mean_run_seconds = all.get("");
    if let Some(mean) = p.mean_run_seconds {
        let mut total = 0.0;
        for s in pending {
            let (run, dataset) = keys(s);
            total += by_run
                .get(&run)
                .or_else(|| by_dataset.get(&dataset))
                .unwrap_or_else(|| {
                    p.unmeasured_pending += 1;
                    mean
                });
        }
        p.remaining_seconds = Some(total / workers.max(1) as f64);
    }
    p
}
