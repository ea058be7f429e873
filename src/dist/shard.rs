//! Which part of each batch a rank computes. Every rank draws the same global batch (the same
//! blocks from the same [`crate::data::BlockSampler`] order, the same MLM masks from the same
//! streams) and keeps a contiguous share of its rows, so the ranks' parts are disjoint, cover
//! the batch, and do not depend on the world size but for where they are cut.

use std::ops::Range;

use crate::objectives::TrainBatch;

/// The rows of `n` that rank `rank` of `size` takes: contiguous, as even as possible (the
/// first `n % size` ranks take one more), in rank order.
pub fn share(n: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start.min(n)..(start + len).min(n)
}

/// The rows `rows` of `batch` (a batch of those rows alone, same attention).
pub fn rows(batch: &TrainBatch, rows: Range<usize>) -> TrainBatch {
    let (_, t) = batch.shape;
    let span = rows.start * t..rows.end * t;
    TrainBatch {
        inputs: batch.inputs[span.clone()].to_vec(),
        targets: batch.targets[span.clone()].to_vec(),
        weights: batch.weights[span].to_vec(),
        shape: (rows.len(), t),
        mode: batch.mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttentionMode;

    #[test]
    fn shares_are_disjoint_cover_and_even() {
        for n in 0..20 {
            for size in 1..6 {
                let parts: Vec<Range<usize>> = (0..size).map(|r| share(n, r, size)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[size - 1].end, n);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let (lo, hi) = (
                    parts.iter().map(|p| p.len()).min().unwrap(),
                    parts.iter().map(|p| p.len()).max().unwrap(),
                );
                assert!(hi - lo <= 1, "{n} rows over {size}: {parts:?}");
            }
        }
        assert_eq!(share(5, 0, 2), 0..3);
        assert_eq!(share(5, 1, 2), 3..5);
    }

    #[test]
    fn rows_keep_their_positions() {
        let batch = TrainBatch {
            inputs: (0..6).collect(),
            targets: (10..16).collect(),
            weights: vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
            shape: (3, 2),
            mode: AttentionMode::Bidirectional,
        };
        let part = rows(&batch, 1..3);
        assert_eq!(part.inputs, [2, 3, 4, 5]);
        assert_eq!(part.targets, [12, 13, 14, 15]);
        assert_eq!(part.weights, [1.0, 1.0, 0.0, 0.0]);
        assert_eq!(part.shape, (2, 2));
        assert_eq!(part.scored(), 2);
    }
}
