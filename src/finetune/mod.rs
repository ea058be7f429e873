//! Fine-tuning: a pretrained (or random) backbone with a task head on one dataset, one
//! learning rate and one seed, with the paper's protocol; the run's record feeds the sweeps and
//! the analysis. The four families: sequence classification (`classify`), token classification
//! (`tag`), extractive QA (`qa`), retrieval (`retrieve`).

pub mod classify;
pub mod config;
pub mod features;
pub mod qa;
pub mod record;
pub mod retrieve;
pub mod reuse;
pub mod saved;
pub mod tag;
pub mod task;
pub mod trainer;

pub use crate::artifacts::{RunResult, Status};
pub use config::FinetuneConfig;
pub use reuse::Reuse;
pub(crate) use trainer::finetune_reusing;
pub use trainer::{finetune, FinetuneOptions};
