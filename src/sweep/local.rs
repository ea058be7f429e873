//! The local executor: the sweep's pending runs, `workers` at a time, each worker a long-lived
//! process (`encoderlab sweep worker`, [`super::worker`]) that takes one run after another and
//! writes each run's record itself, atomically, reusing the dataset and checkpoint the previous
//! run loaded. Finished runs are skipped, so a sweep killed at any moment resumes by running the
//! same command again; a run whose worker dies without its record is recorded `failed` with the
//! worker's exit status and the tail of its log (`logs/worker-{k}.log`), a new worker takes the
//! next run, and the sweep goes on.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::{RunSpec, SweepConfig};
use super::state::{state, wants_run, RunState};
use super::worker::parse_done;
use crate::error::{IoContext, Result};
use crate::finetune::record::failed_record;
use crate::runtime::progress_bar;

/// How to run.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The sweep file (passed to each worker).
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

/// A worker process and the run it is on.
struct Worker<'a> {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Which incarnation of this slot: answers of a replaced worker are ignored.
    generation: usize,
    current: Option<&'a RunSpec>,
    log: PathBuf,
}

/// What a worker's reader thread saw.
enum Event {
    Done {
        slot: usize,
        generation: usize,
        index: usize,
    },
    Closed {
        slot: usize,
        generation: usize,
    },
}

/// Starts worker `slot` (its `generation`-th process) on the sweep file, with the sweep's
/// `registry` as resolved here (a `--registry` given to `sweep run` included).
fn spawn_worker<'a>(
    slot: usize,
    generation: usize,
    registry: Option<&Path>,
    opts: &LocalOptions,
    logs: &Path,
    events: &Sender<Event>,
) -> Result<Worker<'a>> {
    let log = logs.join(format!("worker-{slot}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .at(&log)?;
    let mut command = Command::new(&opts.exe);
    command
        .args(["sweep", "worker", "--config"])
        .arg(&opts.sweep_file)
        .args(["--threads", &opts.threads_per_worker.to_string(), "--die-with-parent"]);
    if let Some(registry) = registry {
        command.arg("--registry").arg(registry);
    }
    let mut child = command
        // the error's message, not a backtrace, is what the failed record should keep
        .env("RUST_LIB_BACKTRACE", "0")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(file)
        .spawn()
        .at(&opts.exe)?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let events = events.clone();
    std::thread::spawn(move || {
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
                if let Some(index) = parse_done(&line) {
                    let _ = events.send(Event::Done {
                        slot,
                        generation,
                        index,
                    });
                }
            }
        }
        let _ = events.send(Event::Closed { slot, generation });
    });
    Ok(Worker {
        child,
        stdin,
        generation,
        current: None,
        log,
    })
}

/// Hands `spec` to `worker`. A worker that cannot take it has died: its reader's `Closed` event
/// records the run, so a failed write needs no handling here.
fn assign<'a>(worker: &mut Worker<'a>, spec: &'a RunSpec) {
    worker.current = Some(spec);
    if let Some(w) = worker.stdin.as_mut() {
        let _ = writeln!(w, "{}", spec.index).and_then(|()| w.flush());
    }
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
    let (tx, rx) = channel();
    let mut workers: Vec<Worker> = Vec::new();
    for slot in 0..opts.workers.max(1).min(queue.len()) {
        workers.push(spawn_worker(slot, 0, cfg.registry.as_deref(), opts, &logs, &tx)?);
    }
    let finish = |spec: &RunSpec, death: Option<(ExitStatus, &Path)>, summary: &mut LocalSummary| -> Result<()> {
        match (state(spec, &runs_dir), death) {
            (RunState::Done(_), _) => summary.done += 1,
            (RunState::Failed | RunState::Corrupt, _) => summary.failed += 1,
            (RunState::Pending, death) => {
                // the worker answered, or died, without the run's record
                let reason = match death {
                    Some((status, log)) => death_reason(status, &log_tail(log, 400)),
                    None => "the worker answered without writing the run's record".to_string(),
                };
                failed_record(&spec.config, &reason)?;
                summary.failed += 1;
            }
        }
        bar.inc(1);
        bar.set_message(format!("{} done, {} failed", summary.done, summary.failed));
        Ok(())
    };
    loop {
        for w in workers.iter_mut().filter(|w| w.current.is_none() && w.stdin.is_some()) {
            let Some(spec) = queue.pop() else { break };
            summary.started += 1;
            assign(w, spec);
        }
        if workers.iter().all(|w| w.current.is_none()) {
            break;
        }
        let Ok(event) = rx.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        match event {
            Event::Done {
                slot,
                generation,
                index,
            } => {
                let w = &mut workers[slot];
                if w.generation != generation {
                    continue;
                }
                if let Some(spec) = w.current.take().filter(|s| s.index == index) {
                    finish(spec, None, &mut summary)?;
                }
            }
            Event::Closed { slot, generation } => {
                if workers[slot].generation != generation {
                    continue;
                }
                let status = workers[slot].child.wait().at(&opts.exe)?;
                if let Some(spec) = workers[slot].current.take() {
                    let log = workers[slot].log.clone();
                    finish(spec, Some((status, &log)), &mut summary)?;
                }
                if queue.is_empty() {
                    // nothing left to give it: retired (its stray answers are ignored)
                    workers[slot].stdin = None;
                    workers[slot].generation += 1;
                } else {
                    // a new worker in its place for what is left
                    workers[slot] = spawn_worker(slot, generation + 1, cfg.registry.as_deref(), opts, &logs, &tx)?;
                }
            }
        }
    }
    // no more input: each worker ends after its (finished) last run
    for w in &mut workers {
        drop(w.stdin.take());
    }
    for mut w in workers {
        w.child.wait().at(&opts.exe)?;
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
