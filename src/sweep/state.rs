//! Where each run of a sweep stands, read from its record (`result.json`), and the plan: how
//! many runs are done, failed or pending, and how long the rest should take at the measured pace.

use std::path::Path;

use serde::Serialize;

use super::config::RunSpec;
use crate::config::load_json;
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
}

/// The record of `spec` under `runs_dir`, if it has one.
pub fn record(spec: &RunSpec, runs_dir: &Path) -> Option<RunResult> {
    let path = runs_dir.join(&spec.run_id).join("result.json");
    load_json(&path).ok()
}

/// The state of `spec`.
pub fn state(spec: &RunSpec, runs_dir: &Path) -> RunState {
    match record(spec, runs_dir) {
        None => RunState::Pending,
        Some(r) if r.status == Status::Failed => RunState::Failed,
        Some(r) => RunState::Done(r.status),
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
    /// Mean wall seconds of the finished runs.
    pub mean_run_seconds: Option<f64>,
    /// pending × mean / workers.
    pub remaining_seconds: Option<f64>,
}

/// The plan of `specs` for `workers` parallel runs.
pub fn plan(specs: &[RunSpec], runs_dir: &Path, workers: usize) -> Plan {
    let mut p = Plan {
        total: specs.len(),
        ok: 0,
        diverged: 0,
        failed: 0,
        pending: 0,
        mean_run_seconds: None,
        remaining_seconds: None,
    };
    let mut walls = Vec::new();
    for s in specs {
        match record(s, runs_dir) {
            None => p.pending += 1,
            Some(r) => {
                match r.status {
                    Status::Ok => p.ok += 1,
                    Status::Diverged => p.diverged += 1,
                    Status::Failed => p.failed += 1,
                }
                if r.status != Status::Failed {
                    walls.push(r.wall_seconds);
                }
            }
        }
    }
    if !walls.is_empty() {
        let mean = walls.iter().sum::<f64>() / walls.len() as f64;
        p.mean_run_seconds = Some(mean);
        p.remaining_seconds = Some(mean * p.pending as f64 / workers.max(1) as f64);
    }
    p
}
