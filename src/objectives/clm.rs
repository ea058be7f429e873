//! Causal language modelling: every position predicts the next token of its block; the last
//! position has no next token and is ignored. Attention is causal.

use super::TrainBatch;
use crate::model::AttentionMode;

/// The CLM batch of `blocks` (all of one length).
pub fn clm_batch(blocks: &[Vec<u32>]) -> TrainBatch {
    let mut batch = TrainBatch::empty(AttentionMode::Causal);
    for block in blocks {
        let t = block.len();
        batch.inputs.extend_from_slice(block);
        for i in 0..t {
            let next = block.get(i + 1);
            batch.targets.push(next.copied().unwrap_or(0));
            batch.weights.push(if next.is_some() { 1.0 } else { 0.0 });
        }
    }
    batch.shape = (blocks.len(), blocks.first().map_or(0, Vec::len));
    batch
}
