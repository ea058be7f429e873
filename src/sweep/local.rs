//! The local executor: the sweep's pending runs, `workers` at a time, each in its own process
//! (`encoderlab sweep run-one`, which writes the run's record itself, atomically). Finished runs
//! are skipped, so a sweep killed at any moment resumes by running the same command again; a
//! run whose process dies without a record is recorded `failed` with its exit status and the
//! tail of its log, and the sweep goes on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::{RunSpec, SweepConfig};
use super::state::{state, wants_run, RunState};
use crate::error::{IoContext, Result};
use crate::finetune::trainer::failed_record;
use crate::train::trainer::progress_bar;

/// How to run.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The sweep file (passed to each `run-one`).
    pub sweep_file: PathBuf,
    /// The `encoderlab` binary.
    pub exe: PathBuf,
    /// Runs at once.
    pub workers: usize,
    /// CPU threads of each run.
    pub threads_per_worker: usize,
    /// Also rerun the runs recorded `failed`.
    pub retry_failed: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What a call did.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct LocalSummary {
    /// Runs started by this call.
    pub started: usize,
    /// Of those, ended ok or diverged.
    pub done: usize,
    /// Of those, ended failed.
    pub failed: usize,
    /// Runs skipped because they were already done (or failed, or damaged, without
    /// `--retry-failed`).
    pub skipped: usize,
    /// Records that do not read whole, each with its file and fix; rerun with `--retry-failed`.
    pub corrupt: Vec<String>,
    /// Wall seconds of this call.
    pub wall_seconds: f64,
}

/// The last `n` characters of a log file.
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.char_indices().rev().nth(n).map_or(0, |(i, _)| i);
    text[start..].trim().to_string()
}

/// Why a run's process ended without its record, in words; a SIGKILL nobody sent by hand is most
/// often the kernel's out-of-memory killer (two 135M-parameter retrieval runs at once need more
/// than 23 GB), which the bare status does not say.
fn death_reason(status: ExitStatus, log_tail: &str) -> String {
    #[cfg(unix)]
    let hint = {
        use std::os::unix::process::ExitStatusExt;
        if status.signal() == Some(9) {
            " (SIGKILL: most often the out-of-memory killer, see `dmesg`; rerun with fewer --workers and --retry-failed)"
        } else {
            ""
        }
    };
    #[cfg(not(unix))]
    let hint = "";
    format!("the run's process ended with {status}{hint}: {log_tail}")
}

fn spawn(spec: &RunSpec, opts: &LocalOptions, log: &Path) -> Result<Child> {
    let file = std::fs::File::create(log).at(log)?;
    let err = file.try_clone().at(log)?;
    Command::new(&opts.exe)
        .args(["sweep", "run-one", "--config"])
        .arg(&opts.sweep_file)
        .args(["--index", &spec.index.to_string()])
        .args(["--threads", &opts.threads_per_worker.to_string(), "--die-with-parent"])
        // the error's message, not a backtrace, is what the failed record should keep
        .env("RUST_LIB_BACKTRACE", "0")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .at(&opts.exe)
}

/// Runs the pending runs of `specs` (and the failed ones with `retry_failed`).
pub fn run_local(cfg: &SweepConfig, specs: &[RunSpec], opts: &LocalOptions) -> Result<LocalSummary> {
    let started = Instant::now();
    let _lock = super::lock::SweepLock::acquire(&cfg.dir(), "sweep run")?;
    let runs_dir = cfg.runs_dir();
    let logs = cfg.dir().join("logs");
    std::fs::create_dir_all(&logs).at(&logs)?;
    std::fs::create_dir_all(&runs_dir).at(&runs_dir)?;
    let mut summary = LocalSummary::default();
    let mut queue: Vec<&RunSpec> = Vec::new();
    for s in specs {
        // the record read once: a damaged one is said, and counts as `Corrupt`
        let st = match super::state::record(s, &runs_dir) {
            Ok(r) => super::state::state_of(r.as_ref()),
            Err(e) => {
                eprintln!("{}: {e}", if opts.retry_failed { "rerun" } else { "skipped" });
                summary.corrupt.push(e.to_string());
                RunState::Corrupt
            }
        };
        if wants_run(st, opts.retry_failed) {
            queue.push(s);
        } else {
            summary.skipped += 1;
        }
    }
    queue.reverse(); // pop from the end = sweep order
    let bar = progress_bar(opts.progress, queue.len(), 0, "runs");
    let mut active: Vec<(&RunSpec, Child, PathBuf)> = Vec::new();
    while !queue.is_empty() || !active.is_empty() {
        while active.len() < opts.workers.max(1) {
            let Some(spec) = queue.pop() else { break };
            let log = logs.join(format!("{}.log", spec.run_id));
            active.push((spec, spawn(spec, opts, &log)?, log));
            summary.started += 1;
        }
        let mut i = 0;
        while i < active.len() {
            let status = active[i].1.try_wait().at(&opts.exe)?;
            let Some(status) = status else {
                i += 1;
                continue;
            };
            let (spec, _, log) = active.swap_remove(i);
            match state(spec, &runs_dir) {
                RunState::Done(_) => summary.done += 1,
                RunState::Failed | RunState::Corrupt => summary.failed += 1,
                RunState::Pending => {
                    // the process died without writing its record
                    let reason = death_reason(status, &log_tail(&log, 400));
                    failed_record(&spec.config, &reason)?;
                    summary.failed += 1;
                }
            }
            bar.inc(1);
            bar.set_message(format!("{} done, {} failed", summary.done, summary.failed));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bar.finish_and_clear();
    summary.wall_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_killed_run_says_what_most_often_kills_it() {
        // a raw wait status of 9 is "killed by signal 9"; 256 is "exited with code 1"
        let killed = death_reason(ExitStatus::from_raw(9), "step 3");
        assert!(killed.contains("out-of-memory killer"), "{killed}");
        assert!(killed.ends_with(": step 3"), "{killed}");
        let exited = death_reason(ExitStatus::from_raw(256), "error: bad config");
        assert!(!exited.contains("out-of-memory"), "{exited}");
        assert!(exited.contains("exit status: 1"), "{exited}");
    }
}
