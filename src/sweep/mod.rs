//! Sweeps: grids of fine-tuning runs (checkpoints × tasks × learning rates × seeds × any key),
//! planned, run locally in parallel processes or as Slurm job arrays, resumed after any
//! interruption, and collected into the runs table the analysis reads.

pub mod collect;
pub mod config;
pub mod encodeval;
pub mod inline;
pub mod local;
pub mod lock;
pub mod slurm;
pub mod state;
pub mod worker;

pub use collect::collect;
pub use config::{Axis, RunSpec, SweepConfig};
pub use inline::run_inline;
pub use local::{run_local, LocalOptions, LocalSummary};
pub use lock::SweepLock;
pub use state::{plan, state, Plan, RunState};
