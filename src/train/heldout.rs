//! The held-out positions a pretraining run is scored on: the next tokens of the first
//! validation blocks for CLM, the evaluation mask's positions for MLM. The model's evaluation
//! (`trainer`) and the unigram floor (`unigram`) both score exactly these.

use crate::data::{PackedDataset, Split};
use crate::dist::{Communicator, Single};
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
    score: impl FnMut(&crate::objectives::TrainBatch) -> Result<f64>,
) -> Result<(f64, f64)> {
    held_out_losses_on(data, n, batch, masking, tokens, &Single, score)
}

/// [`held_out_losses`] shared between the ranks of `world`: rank r scores the chunks i with
/// i mod size = r, the scores are summed over the ranks (each slot has one rank's value, the
/// others' zeros, so the sum is exact) and combined in chunk order: every rank gets the bits a
/// single process gets.
pub(crate) fn held_out_losses_on(
    data: &PackedDataset,
    n: usize,
    batch: usize,
    masking: &crate::objectives::MaskingConfig,
    tokens: &MaskTokens,
    world: &dyn Communicator,
    mut score: impl FnMut(&crate::objectives::TrainBatch) -> Result<f64>,
) -> Result<(f64, f64)> {
    let n = n.min(data.blocks(Split::Validation) as usize);
    let indices: Vec<u64> = (0..n as u64).collect();
    let chunks: Vec<&[u64]> = indices.chunks(batch.max(1)).collect();
    let mut scores = vec![0.0f64; 2 * chunks.len()];
    for (i, chunk) in chunks.iter().enumerate() {
        if i % world.size() != world.rank() {
            continue;
        }
        let blocks = chunk
            .iter()
            .map(|&i| data.block(Split::Validation, i))
            .collect::<Result<Vec<_>>>()?;
        scores[2 * i] = score(&clm_batch(&blocks))?;
        scores[2 * i + 1] = score(&mlm_eval_batch(&blocks, chunk, masking, tokens))?;
    }
    world.sum_f64("the held-out losses' all-reduce", &mut scores)?;
    let (mut clm, mut mlm) = (0.0, 0.0);
    for (i, chunk) in chunks.iter().enumerate() {
        let share = chunk.len() as f64 / n as f64;
        clm += share * scores[2 * i];
        mlm += share * scores[2 * i + 1];
    }
    Ok((clm, mlm))
}
