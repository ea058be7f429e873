//! Learning-rate schedules: pure functions of the optimizer step (0-based). Warmup is linear
//! from peak/warmup to the peak at step `warmup_steps − 1`; then
//! - `wsd` (the paper's warmup–stable–decay): constant, then linear decay over the last
//!   `decay_steps` steps, reaching 0 after the last step;
//! - `cosine`: cosine from the peak to `min_ratio`·peak at the last step;
//! - `linear`: linear from the peak to 0 after the last step;
//! - `constant`: the peak.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The shape after warmup.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// Constant at the peak.
    Constant,
    /// Warmup–stable–decay: linear decay to 0 over the last `decay_steps`.
    Wsd {
        /// Length of the final decay.
        decay_steps: usize,
    },
    /// Cosine decay to `min_ratio` × peak.
    Cosine {
        /// Final learning rate as a fraction of the peak.
        #[serde(default)]
        min_ratio: f64,
    },
    /// Linear decay to 0.
    Linear,
}

/// A learning-rate schedule over `total_steps` optimizer steps.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LrConfig {
    /// Peak learning rate.
    pub peak: f64,
    /// Linear warmup steps.
    pub warmup_steps: usize,
    /// What follows the warmup.
    pub schedule: LrSchedule,
}

impl LrConfig {
    /// Checks the schedule against a run of `total_steps`.
    pub fn validate(&self, total_steps: usize) -> Result<()> {
        if self.peak.is_nan() || self.peak <= 0.0 {
            return Err(Error::config("lr.peak", format!("{} must be positive", self.peak)));
        }
        if self.warmup_steps > total_steps {
            return Err(Error::config(
                "lr.warmup_steps",
                format!(
                    "{} warmup steps exceed the {total_steps} steps of the run",
                    self.warmup_steps
                ),
            ));
        }
        match self.schedule {
            LrSchedule::Wsd { decay_steps } if decay_steps == 0 || self.warmup_steps + decay_steps > total_steps => {
                Err(Error::config(
                    "lr.schedule.decay_steps",
                    format!(
                        "{decay_steps} decay steps: must be ≥ 1 and, with {} warmup steps, fit in {total_steps} steps",
                        self.warmup_steps
                    ),
                ))
            }
            LrSchedule::Cosine { min_ratio } if !(0.0..=1.0).contains(&min_ratio) => Err(Error::config(
                "lr.schedule.min_ratio",
                format!("{min_ratio} is not in [0, 1]"),
            )),
            _ => Ok(()),
        }
    }
}

/// The learning rate of optimizer step `step` (0-based) in a run of `total_steps`.
pub fn lr_at(cfg: &LrConfig, step: usize, total_steps: usize) -> f64 {
    let (peak, warmup) = (cfg.peak, cfg.warmup_steps);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let left = total_steps.saturating_sub(step) as f64; // steps left, this one included
    match cfg.schedule {
        LrSchedule::Constant => peak,
        LrSchedule::Wsd { decay_steps } => {
            if total_steps.saturating_sub(step) > decay_steps {
                peak
            } else {
                peak * left / decay_steps as f64
            }
        }
        LrSchedule::Linear => peak * left / (total_steps - warmup).max(1) as f64,
        LrSchedule::Cosine { min_ratio } => {
            let span = (total_steps - warmup).saturating_sub(1).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            let min = peak * min_ratio;
            min + (peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}
