//! The floor a pretrained model must clear: the held-out losses of the unigram model of the
//! training blocks (each token's frequency, add-one smoothed over the vocabulary), scored on
//! the same validation blocks and positions as the trainer's evaluation (the next tokens for
//! CLM, the eval mask's positions for MLM). A model at this loss has learned token
//! frequencies and nothing of context.

use crate::data::tokens::{PackedDataset, Split};
use crate::error::Result;
use crate::objectives::mlm::{MaskTokens, MaskingConfig};
use crate::objectives::TrainBatch;

/// −log p(token) of the add-one smoothed unigram model of `train`, for every id below `vocab`.
pub fn unigram_nll(train: &[u32], vocab: usize) -> Vec<f64> {
    let mut counts = vec![1.0f64; vocab];
    for &t in train {
        if let Some(c) = counts.get_mut(t as usize) {
            *c += 1.0;
        }
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| -(c / total).ln()).collect()
}

/// The weighted mean of `nll` over a batch's scored targets.
fn batch_loss(batch: &TrainBatch, nll: &[f64]) -> f64 {
    let (mut sum, mut weight) = (0.0, 0.0);
    for (&t, &w) in batch.targets.iter().zip(&batch.weights) {
        if w > 0.0 {
            sum += f64::from(w) * nll.get(t as usize).copied().unwrap_or(f64::NAN);
            weight += f64::from(w);
        }
    }
    if weight > 0.0 {
        sum / weight
    } else {
        0.0
    }
}

/// (CLM, MLM) held-out losses of the unigram model on the first `n` validation blocks, in
/// chunks of `batch` blocks weighted as the trainer's evaluation weighs them.
pub(crate) fn unigram_losses(
    data: &PackedDataset,
    n: usize,
    batch: usize,
    masking: &MaskingConfig,
    tokens: &MaskTokens,
) -> Result<(f64, f64)> {
    let train = data.file(Split::Train);
    let nll = unigram_nll(&train.tokens(0, train.len())?, tokens.vocab_size as usize);
    super::heldout::held_out_losses(data, n, batch, masking, tokens, |b| Ok(batch_loss(b, &nll)))
}
