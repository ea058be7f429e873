//! Schedules: the learning rate and the phases, pure functions of the optimizer step.

pub mod lr;
pub mod phase;

pub use lr::{lr_at, LrConfig, LrSchedule};
pub use phase::{phase_at, phase_start, total_steps, validate_phases, Phase};
