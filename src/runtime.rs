//! The run-time plumbing every journey shares (pretraining, fine-tuning, sweeps, interop): the
//! device a config names, the CPU threads of a process, and the progress bar of a long loop.

use candle_core::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Result};

/// The device named `cpu` or `cuda:N` (`cuda` is `cuda:0`).
pub fn device(name: &str) -> Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = name
        .strip_prefix("cuda:")
        .or_else(|| (name == "cuda").then_some("0"))
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| Error::config("train.device", format!("`{name}`: use cpu or cuda:N")))?;
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::config(
            "train.device",
            format!("`{name}`: this build has no CUDA (build with --features cuda)"),
        ));
    }
    Ok(Device::new_cuda(ordinal)?)
}

/// Runs this process's CPU work on `threads` threads (all cores when `None`). Call it before any
/// tensor work: candle's CPU kernels read `RAYON_NUM_THREADS`, and rayon's global pool is built
/// once.
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().ok();
    }
}

/// The progress bar of a loop over `total` units (`steps`, `runs`), drawn on stderr when
/// `show`, positioned at `at`.
pub fn progress_bar(show: bool, total: usize, at: usize, unit: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total as u64),
        if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {unit}, {{msg}}, ETA {{eta}}"))
    {
        bar.set_style(style);
    }
    bar.set_position(at as u64);
    bar
}
