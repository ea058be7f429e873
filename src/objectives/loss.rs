//! Cross entropy with ignored positions (candle-nn has no ignore index): a weight per position,
//! 0 for ignored ones; the loss is the weighted mean of −log p(target).

use candle_core::{DType, Result, Tensor, D};

/// Mean of −log softmax(logits)[target] over the positions of weight 1.
///
/// # Shapes
/// `logits`: (N, V); `targets`: (N) u32 (any valid id where ignored); `weights`: (N) f32 of 0/1
/// → scalar. With no position of weight 1 the loss is 0 (still connected to the graph, so every
/// weight gets a zero gradient rather than none).
pub fn masked_cross_entropy(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let (n, _) = logits.dims2()?;
    if targets.dims1()? != n || weights.dims1()? != n {
        candle_core::bail!(
            "logits for {n} positions, targets {:?}, weights {:?}",
            targets.shape(),
            weights.shape()
        );
    }
    let log_probs = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?; // (N)
    let count = weights.sum_all()?.to_scalar::<f32>()?.max(1.0);
    (picked * weights)?.sum_all()?.neg()? / f64::from(count)
}
