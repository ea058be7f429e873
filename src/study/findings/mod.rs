//! The paper's findings F1–F6 (the `claim` of each [`Finding`]) as comparisons of the study's runs, each
//! with point estimates, 95 % intervals, a test, Holm-corrected p-values and a verdict.
//!
//! Conventions: a model's score on a dataset is its test score at its best
//! learning rate (chosen on validation), one value per seed, failed runs at the task's chance
//! score. Comparisons across datasets use normalised scores, (score − chance) / (max − chance),
//! paired by (dataset, seed) (`dataset_seed` units); a comparison on one dataset is
//! Welch's test over seeds. Each finding's primary tests form one family, corrected
//! with Holm over the whole report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::arms::percent;
use super::config::StudyConfig;
use super::control::Control;
use crate::stats::describe::{mean, std, t_interval};
use crate::stats::multitest::{adjust, Correction};
use crate::stats::report::RunsIndex;
use crate::stats::ttest::{paired, welch};

/// One comparison: `a − b`, where the paper expects the sign `expected`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The finding it belongs to (`F1` … `F6`, or `baseline`).
    pub finding: String,
    /// What is compared, in words.
    pub label: String,
    /// Model (or measure) a.
    pub a: String,
    /// Model (or measure) b.
    pub b: String,
    /// A dataset, a family, or `all`.
    pub scope: String,
    /// Paired units (or seeds per side).
    pub n: usize,
    /// Mean of a (and its interval).
    pub mean_a: f64,
    /// Lower end.
    pub lo_a: f64,
    /// Upper end.
    pub hi_a: f64,
    /// Mean of b.
    pub mean_b: f64,
    /// Lower end.
    pub lo_b: f64,
    /// Upper end.
    pub hi_b: f64,
    /// a − b.
    pub diff: f64,
    /// Lower end of its interval.
    pub diff_lo: f64,
    /// Upper end.
    pub diff_hi: f64,
    /// The test.
    pub test: String,
    /// Two-sided p-value.
    pub p: f64,
    /// Holm-corrected p-value within its family (the report's primary tests, or the rows of
    /// one table).
    pub p_holm: f64,
    /// The sign the paper's claim predicts for a − b.
    pub expected: f64,
    /// Part of the report's family of primary tests.
    pub primary: bool,
}

/// What the data say about a claim.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significant (after Holm) in the paper's direction.
    Reproduced,
    /// Significant in the other direction.
    Contradicted,
    /// Neither.
    Inconclusive,
    /// Its models do not beat random init (the positive control): nothing to judge.
    NotTestable,
    /// The study has no runs of its models (an arm the study does not train, or failed).
    NotRun,
}

impl Verdict {
    /// In words.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive => "inconclusive at this scale",
            Verdict::NotTestable => "not testable at this scale",
            Verdict::NotRun => "not run",
        }
    }
}

/// One finding, evaluated.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Finding {
    /// `F1` … `F6`.
    pub id: String,
    /// The paper's claim.
    pub claim: String,
    /// The comparison that tests it.
    pub design: String,
    /// The models it compares: each must pass the positive control for a verdict.
    pub models: Vec<String>,
    /// Every comparison (primary and supporting).
    pub rows: Vec<Comparison>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in words.
    pub why: String,
}

mod claims;
mod evidence;
mod verdict;

pub use super::control::system_of;
pub use crate::stats::multitest::fmt_p;
pub use claims::evaluate;
pub(crate) use claims::f1_f3;
#[cfg(feature = "plots")]
pub(crate) use claims::f2_checkpoints;
pub use evidence::{Evidence, Names, Scores};
