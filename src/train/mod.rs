//! Training: configuration, the optimizer, checkpoints and the pretraining loop.

pub mod checkpoint;
pub mod config;
mod heldout;
mod host_adamw;
pub mod optim;
mod resume;
pub mod trainer;
pub mod unigram;

pub use config::{Precision, PretrainConfig};
pub use optim::{AdamW, Grads, OptimConfig};
pub use resume::pretrain_resumable;
pub use trainer::{pretrain, RunOptions, RunSummary, StepMetrics};
