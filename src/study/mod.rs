//! The study: one command runs the whole CLM-vs-MLM experiment and answers each of the paper's
//! findings with confidence intervals. A [`StudyConfig`] (a preset, or a TOML file) names the
//! data, the tokenizer, the pretraining arms at one step budget, the fine-tuning grid and the
//! analysis; [`run_study`] runs it resumably and writes `REPORT.md`; [`paper`] emits the
//! paper-scale grid for a GPU cluster with its cost estimate.

pub mod arms;
pub mod config;
pub mod configs;
pub mod control;
pub mod crossing;
pub mod figures;
pub mod findings;
pub mod losses;
pub mod outcome;
pub mod paper;
pub mod parallel;
pub mod plans;
pub mod probe;
pub mod released;
pub mod report;
pub mod run;
mod sections;

pub use config::StudyConfig;
pub use findings::{Comparison, Finding, Verdict};
pub use run::{run_study, StudyOptions, StudyOutcome};
