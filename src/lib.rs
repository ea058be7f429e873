//! encoderlab: pretrain Llama/EuroBERT-style encoders with causal LM, masked LM or a biphasic
//! CLM→MLM schedule, fine-tune them on four task families, and analyse the runs, reproducing
//! "Should we still pretrain encoders with masked language modeling?" (Gisserot-Boukhlef et al.,
//! 2025).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod alloc;
pub mod artifacts;
pub mod config;
pub mod csvcell;
pub mod data;
pub mod dist;
pub mod error;
pub mod eval;
pub mod finetune;
pub mod fsutil;
pub mod heads;
pub mod interop;
pub mod model;
#[cfg(feature = "notebook")]
pub mod notebook;
pub mod objectives;
pub mod rng;
pub mod runtime;
pub mod schedule;
pub mod stats;
pub mod study;
pub mod sweep;
pub mod tensorboard;
pub mod tokenizer;
pub mod train;

pub use error::{Error, Result};

/// The names a notebook or a script needs most (29): data preparation, the three journeys'
/// configs and entry points, their results, the export of a model to `transformers`, and the
/// notebook displays. Everything else is one module path away.
pub mod prelude {
    pub use crate::data::prepare::{prepare_pretraining_data, PrepareOptions};
    pub use crate::data::{Registry, TaskFamily};
    pub use crate::error::{Error, Result};
    pub use crate::finetune::saved::MODEL_DIR;
    pub use crate::finetune::{finetune, FinetuneConfig, RunResult, Status};
    pub use crate::interop::export::{export_hf, ExportOptions};
    #[cfg(feature = "notebook")]
    pub use crate::notebook::{attention_demo, compare, notebook_setup, results_table, History, Report};
    pub use crate::stats::report::{ReportConfig, Table};
    pub use crate::study::{run_study, StudyConfig, StudyOptions};
    pub use crate::sweep::SweepConfig;
    pub use crate::train::{pretrain, PretrainConfig, RunOptions, RunSummary};
}
