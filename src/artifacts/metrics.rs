//! The training curves runs write as they go, one JSON object a line (`metrics.jsonl`):
//! pretraining steps ([`StepMetrics`]) and fine-tuning steps ([`FinetuneStepMetrics`]).

use serde::{Deserialize, Serialize};

use crate::objectives::Objective;

/// One line of a pretraining run's `metrics.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StepMetrics {
    /// Optimizer steps done (1-based).
    pub step: usize,
    /// Phase index.
    pub phase: usize,
    /// The phase's objective.
    pub objective: Objective,
    /// Training loss of the step (mean over its micro-batches).
    pub loss: f64,
    /// Held-out CLM loss (at evaluation steps).
    pub eval_clm_loss: Option<f64>,
    /// Held-out MLM loss at the fixed evaluation ratio (at evaluation steps).
    pub eval_mlm_loss: Option<f64>,
    /// Learning rate of the step.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens consumed so far.
    pub tokens_seen: u64,
    /// Training throughput of the step (evaluation excluded).
    pub tokens_per_s: f64,
}

/// One line of a fine-tuning run's `metrics.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FinetuneStepMetrics {
    /// Optimizer steps done (1-based).
    pub step: usize,
    /// Training loss of the step (mean over its micro-batches).
    pub loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Training examples per second so far (two decimals).
    pub examples_per_s: f64,
}
