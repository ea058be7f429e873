//! Pretraining objectives: each turns token blocks into a [`TrainBatch`] (inputs, targets, a
//! weight per position and the attention mode), and [`loss`] scores a model on it.

pub mod clm;
pub mod loss;
pub mod mlm;

use candle_core::{Device, Result, Tensor};
use serde::{Deserialize, Serialize};

pub use clm::clm_batch;
pub use loss::masked_cross_entropy;
pub use mlm::{mlm_batch, mlm_eval_batch, MaskTokens, MaskingConfig};

use crate::model::{AttentionMode, LanguageModel};

/// A pretraining objective.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Causal language modelling.
    Clm,
    /// Masked language modelling.
    Mlm,
}

impl Objective {
    /// The attention the objective trains with.
    pub fn attention(self) -> AttentionMode {
        match self {
            Objective::Clm => AttentionMode::Causal,
            Objective::Mlm => AttentionMode::Bidirectional,
        }
    }
}

/// One batch ready for the model, flattened row-major: `shape` = (B, T).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBatch {
    /// Input ids (B·T).
    pub inputs: Vec<u32>,
    /// Target ids (B·T).
    pub targets: Vec<u32>,
    /// 1 where the position is scored, 0 where it is ignored (B·T).
    pub weights: Vec<f32>,
    /// (B, T).
    pub shape: (usize, usize),
    /// Attention of the forward pass.
    pub mode: AttentionMode,
}

impl TrainBatch {
    fn empty(mode: AttentionMode) -> Self {
        Self {
            inputs: Vec::new(),
            targets: Vec::new(),
            weights: Vec::new(),
            shape: (0, 0),
            mode,
        }
    }

    /// Positions scored.
    pub fn scored(&self) -> usize {
        self.weights.iter().filter(|w| **w > 0.0).count()
    }
}

/// The mean loss of `model` on `batch` (scalar tensor), with the batch's attention mode.
pub fn loss(model: &LanguageModel, batch: &TrainBatch, device: &Device, train: bool) -> Result<Tensor> {
    let (b, t) = batch.shape;
    let inputs = Tensor::from_slice(&batch.inputs, (b, t), device)?;
    let logits = model.forward_t(&inputs, None, batch.mode, train)?; // (B, T, V)
    let targets = Tensor::from_slice(&batch.targets, b * t, device)?;
    let weights = Tensor::from_slice(&batch.weights, b * t, device)?;
    masked_cross_entropy(&logits.flatten_to(1)?, &targets, &weights)
}
