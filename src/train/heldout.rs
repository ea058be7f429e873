//! The held-out positions a pretraining run is scored on: the next tokens of the first
//! validation blocks for CLM, the evaluation mask's positions for MLM. The model's evaluation
//! (`trainer`) and the unigram floor (`unigram`) both score exactly these.

use crate::data::{PackedDataset, Split};
use crate::error::Result;
use crate::objectives::{clm_batch, mlm_eval_batch, MaskTokens};

/// (CLM, MLM) held-out losses of `score` (a batch's mean loss) over the first `n` validation
/// blocks in chunks of `batch`, each chunk weighted by its share of the blocks: the next
/// tokens for CLM, the evaluation mask's positions (seeded by block index) for MLM. The
/// model's evaluation and the unigram floor both score exactly these positions.
pub(crate) fn held_out_losses(
    data: &PackedDataset,
    n: usize,
    batch: usize,
    masking: &crate::objectives::MaskingConfig,
    tokens: &MaskTokens,
    mut score: impl FnMut(&crate::objectives::TrainBatch) -> Result<f64>,
) -> Result<(f64, f64)> {
    let n = n.min(data.blocks(Split::Validation) as usize);
    let (mut clm, mut mlm) = (0.0, 0.0);
    let indices: Vec<u64> = (0..n as u64).collect();
    for chunk in indices.chunks(batch.max(1)) {
        let blocks = chunk
            .iter()
            .map(|&i| data.block(Split::Validation, i))
            .collect::<Result<Vec<_>>>()?;
        let share = chunk.len() as f64 / n as f64;
        clm += share * score(&clm_batch(&blocks))?;
        mlm += share * score(&mlm_eval_batch(&blocks, chunk, masking, tokens))?;
    }
    Ok((clm, mlm))
}
