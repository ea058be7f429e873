//! Running a pretraining configuration to completion, whatever state its folder is in: what a
//! rerun job, the study and `pretrain --continue` want.

use crate::error::Result;
use crate::train::checkpoint::{checkpoint_dir, list_checkpoints, load_state};
use crate::train::{pretrain, PretrainConfig, RunOptions, RunSummary};

/// Runs `cfg` to completion: returns the saved summary of a completed run, resumes an
/// interrupted one from its last checkpoint, starts a new one.
pub fn pretrain_resumable(cfg: &PretrainConfig, progress: bool) -> Result<(RunSummary, bool)> {
    let dir = cfg.run_dir();
    let resume = match list_checkpoints(&dir)?.last() {
        Some(&step) if step < cfg.total_steps() => {
            let ck = checkpoint_dir(&dir, step);
            load_state(&ck).ok().filter(|s| s.config.same_run(cfg)).map(|_| ck)
        }
        _ => None,
    };
    let complete = resume.is_none() && !list_checkpoints(&dir)?.is_empty();
    let summary = pretrain(
        cfg,
        &RunOptions {
            resume,
            stop_after: None,
            progress,
        },
    )?;
    Ok((summary, !complete))
}
