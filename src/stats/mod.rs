//! Statistics over fine-tuning runs: small pure
//! functions on slices of scores, each checked against its reference implementation (scipy,
//! statsmodels, Dodge et al.'s expected max) by golden tests in `tests/stats_golden.rs`.

pub mod aggregate;
pub mod bootstrap;
pub mod describe;
pub mod expected_max;
pub mod hierarchical;
pub mod hierarchical_aggregate;
pub mod instances;
pub mod multitest;
#[cfg(feature = "plots")]
pub mod plots;
pub mod power;
pub mod proportion;
pub mod rank;
pub mod report;
pub mod runs;
pub mod sign;
pub mod stability;
pub mod synth;
pub mod ttest;
