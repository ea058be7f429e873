//! Pretraining objectives: each turns token blocks into a [`TrainBatch`] (inputs, targets, a
//! weight per position and the attention mode), and [`loss()`] scores a model on it.

pub mod clm;
pub mod fused_head;
pub mod loss;
pub mod mlm;

use candle_core::{Device, Result, Tensor};
use serde::{Deserialize, Serialize};

pub use clm::clm_batch;
pub use fused_head::fused_head_cross_entropy;
pub(crate) use fused_head::fused_head_ok;
pub use loss::masked_cross_entropy;
pub(crate) use loss::summed_cross_entropy;
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

/// Logits computed at once (rows × V floats, 128 MiB in f32): bounds the memory of the LM head
/// and of its gradient with a large vocabulary (Llama-3's 128,256 ids: 261 rows at a time).
const HEAD_CHUNK_FLOATS: usize = 1 << 25;

/// The mean loss of `model` on `batch` (scalar tensor), with the batch's attention mode. Only
/// the scored positions go through the LM head when they are few (an MLM batch at 40 % computes
/// 40 % of the logits), in chunks of rows.
pub fn loss(model: &LanguageModel, batch: &TrainBatch, device: &Device, train: bool) -> Result<Tensor> {
    partial_loss(model, batch, device, train, batch.scored())
}

/// The summed loss of `batch`'s scored positions divided by `denominator`: the scored
/// positions of the whole batch this one is a part of (a data-parallel rank's rows), so that
/// the parts' losses, and their gradients, add up to the whole batch's mean.
pub fn partial_loss(
    model: &LanguageModel,
    batch: &TrainBatch,
    device: &Device,
    train: bool,
    denominator: usize,
) -> Result<Tensor> {
    let chunk = (HEAD_CHUNK_FLOATS / model.config.vocab_size).max(1);
    chunked_loss(model, batch, device, train, chunk, denominator)
}

/// [`loss()`] with the LM head run over `chunk` rows at a time.
pub fn loss_in_chunks(
    model: &LanguageModel,
    batch: &TrainBatch,
    device: &Device,
    train: bool,
    chunk: usize,
) -> Result<Tensor> {
    chunked_loss(model, batch, device, train, chunk, batch.scored())
}

fn chunked_loss(
    model: &LanguageModel,
    batch: &TrainBatch,
    device: &Device,
    train: bool,
    chunk: usize,
    denominator: usize,
) -> Result<Tensor> {
    let chunk = chunk.max(1);
    let (b, t) = batch.shape;
    let inputs = Tensor::from_slice(&batch.inputs, (b, t), device)?;
    let hidden = model.model.forward_t(&inputs, None, batch.mode, train)?.flatten_to(1)?; // (B·T, H)
    let scored: Vec<u32> = (0..b * t)
        .filter(|&i| batch.weights[i] > 0.0)
        .map(|i| i as u32)
        .collect();
    if scored.is_empty() {
        // nothing to predict: a zero loss that still reaches every weight
        return model.head(&hidden.narrow(0, 0, 1)?)?.sum_all()? * 0.0;
    }
    // mostly scored (CLM): every row, ignored ones weighted 0; sparse (MLM): the scored rows
    let (hidden, targets, weights) = if scored.len() * 10 >= b * t * 9 {
        (hidden, batch.targets.clone(), batch.weights.clone())
    } else {
        let rows = Tensor::from_slice(&scored, scored.len(), device)?;
        let targets = scored.iter().map(|&i| batch.targets[i as usize]).collect();
        (hidden.index_select(&rows, 0)?, targets, vec![1f32; scored.len()])
    };
    let mut total: Option<Tensor> = None;
    for start in (0..targets.len()).step_by(chunk) {
        let n = chunk.min(targets.len() - start);
        let rows = hidden.narrow(0, start, n)?;
        let (targets, weights) = (&targets[start..start + n], &weights[start..start + n]);
        let part = if fused_head_ok(&rows, model.head_weight()) {
            fused_head_cross_entropy(&rows, model.head_weight(), targets, weights)?
        } else {
            let logits = model.head(&rows)?;
            let (t, w) = (
                Tensor::from_slice(targets, n, device)?,
                Tensor::from_slice(weights, n, device)?,
            );
            summed_cross_entropy(&logits, &t, &w)?
        };
        total = Some(match total {
            Some(t) => (t + part)?,
            None => part,
        });
    }
    match total {
        Some(t) => t / denominator.max(1) as f64,
        None => candle_core::bail!("no scored position"),
    }
}
