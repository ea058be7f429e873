//! Pretraining arms side by side: `pretrain.workers` processes of the `encoderlab` binary
//! (`pretrain --continue`, each with its share of the cores), a continued arm started once its
//! parent run has completed. Small models use one core poorly past one thread, so on a small
//! machine two single-threaded runs do about twice the work of one run with both cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::arms::{run_name, Arm, ArmKind};
use super::config::StudyConfig;
use super::run::ArmConfig;
use crate::error::{IoContext, Result};
use crate::train::RunSummary;

/// What one run ended as: its `summary.json` status (`completed`, `diverged`, …), or why it
/// has none.
fn status(dir: &Path) -> String {
    crate::config::load_json::<RunSummary>(&dir.join("summary.json"))
        .map_or_else(|e| format!("failed ({e}; see its log)"), |s| s.status)
}

/// Runs every arm of `runs` (in order, continued arms after their parents) with up to
/// `workers` processes of `exe`; returns (runs started or resumed, runs that did not complete).
pub(crate) fn pretrain_parallel(
    cfg: &StudyConfig,
    runs: &[ArmConfig],
    exe: &Path,
    workers: usize,
) -> Result<(usize, Vec<String>)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / workers.max(1)).max(1);
    let logs = cfg.out.join("pretrain").join("logs");
    std::fs::create_dir_all(&logs).at(&logs)?;
    let mut pending: Vec<&ArmConfig> = runs.iter().collect();
    let mut running: Vec<(&Arm, PathBuf, Child)> = Vec::new();
    let (mut started, mut failed, mut done): (usize, Vec<String>, Vec<String>) = (0, Vec::new(), Vec::new());
    while !pending.is_empty() || !running.is_empty() {
        // start what can start: a continued arm waits for its parent
        let mut i = 0;
        while running.len() < workers.max(1) && i < pending.len() {
            let ArmConfig { arm, path, config: pc } = pending[i];
            let parent = match &arm.kind {
                ArmKind::Continued { from } => Some(run_name(cfg, from, arm.seed)),
                _ => None,
            };
            if let Some(p) = &parent {
                if failed.contains(p) {
                    eprintln!("arm {}: left out, its parent {p} did not complete", arm.run);
                    failed.push(arm.run.clone());
                    pending.remove(i);
                    continue;
                }
                if !done.contains(p) {
                    i += 1;
                    continue;
                }
            }
            let complete = status(&pc.run_dir()) == "completed"
                && crate::train::checkpoint::list_checkpoints(&pc.run_dir())?.last() == Some(&pc.total_steps());
            if !complete {
                started += 1;
            }
            let log = logs.join(format!("{}.log", arm.run));
            let file = std::fs::File::create(&log).at(&log)?;
            eprintln!(
                "pretraining arm {} (seed {}, {} steps, {}) with {threads} thread(s); log {}",
                arm.name,
                arm.seed,
                arm.steps,
                arm.size,
                log.display()
            );
            let child = Command::new(exe)
                .args(["pretrain", "--continue", "--config"])
                .arg(path)
                .args(["--threads", &threads.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .at(exe)?;
            running.push((arm, pc.run_dir(), child));
            pending.remove(i);
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut still = Vec::new();
        for (arm, dir, mut child) in running {
            match child.try_wait().at(exe)? {
                None => still.push((arm, dir, child)),
                Some(_) => {
                    let s = status(&dir);
                    if s == "completed" {
                        done.push(arm.run.clone());
                    } else {
                        eprintln!("arm {}: {s}", arm.run);
                        failed.push(arm.run.clone());
                    }
                }
            }
        }
        running = still;
    }
    Ok((started, failed))
}
