//! Cross entropy with ignored positions (candle-nn has no ignore index): a weight per position,
//! 0 for ignored ones; the loss is the weighted mean of −log p(target). On contiguous f32 CPU
//! logits a fused kernel computes it in one pass over the (N, V) logits and its backward in one
//! more (softmax − one-hot, scaled), instead of the half-dozen passes of a composed log-softmax.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use crate::model::kernels::cpu::contiguous_f32;

/// Mean of −log softmax(logits)\[target\] over the positions of weight 1.
///
/// # Shapes
/// `logits`: (N, V); `targets`: (N) u32 (any valid id where ignored); `weights`: (N) f32 of 0/1
/// → scalar. With no position of weight 1 the loss is 0 (still connected to the graph, so every
/// weight gets a zero gradient rather than none).
pub fn masked_cross_entropy(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let count = f64::from(weights.sum_all()?.to_scalar::<f32>()?.max(1.0));
    summed_cross_entropy(logits, targets, weights)? / count
}

/// Σ w · (−log softmax(logits)[target]) over the rows (the numerator of
/// [`masked_cross_entropy`]), fused on contiguous f32 CPU logits.
pub(crate) fn summed_cross_entropy(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let (n, v) = logits.dims2()?;
    if targets.dims1()? != n || weights.dims1()? != n {
        candle_core::bail!(
            "logits for {n} positions, targets {:?}, weights {:?}",
            targets.shape(),
            weights.shape()
        );
    }
    let per_row = if crate::model::kernels::cpu::fused_ok(&[logits]) {
        let targets: Vec<u32> = targets.to_vec1()?;
        if let Some(bad) = targets.iter().find(|t| **t as usize >= v) {
            candle_core::bail!("target id {bad} outside the vocabulary of {v}");
        }
        logits.apply_op1(RowLoss {
            targets: Arc::new(targets),
            weights: Arc::new(weights.to_dtype(DType::F32)?.to_vec1()?),
        })?
    } else {
        row_loss_composed(logits, targets, weights)?
    };
    per_row.sum_all()
}

/// The composed path: w · (−log softmax(logits)\[target\]) per row.
pub fn row_loss_composed(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?; // (N)
    (picked * weights.to_dtype(DType::F32)?)?.neg()
}

/// log Σ exp(row), stably.
fn logsumexp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln()
}

/// Per row: w · (logsumexp(x) − x[target]).
struct RowLoss {
    targets: Arc<Vec<u32>>,
    weights: Arc<Vec<f32>>,
}

impl CustomOp1 for RowLoss {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let v = l.dims()[1];
        let out: Vec<f32> = x
            .par_chunks(v)
            .enumerate()
            .map(|(i, row)| {
                let w = self.weights[i];
                if w == 0.0 {
                    0.0
                } else {
                    w * (logsumexp(row) - row[self.targets[i] as usize])
                }
            })
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(l.dims()[0])))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let back = RowLossGrad {
            targets: self.targets.clone(),
            weights: self.weights.clone(),
        };
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &back)?))
    }
}

/// d loss / d logits = g · w · (softmax(x) − one_hot(target)).
struct RowLossGrad {
    targets: Arc<Vec<u32>>,
    weights: Arc<Vec<f32>>,
}

impl CustomOp2 for RowLossGrad {
    fn name(&self) -> &'static str {
        "fused-cross-entropy-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (
            contiguous_f32(s1, l1, self.name())?,
            contiguous_f32(s2, l2, self.name())?,
        );
        let v = l1.dims()[1];
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(v).enumerate().for_each(|(i, o)| {
            let scale = g[i] * self.weights[i];
            if scale == 0.0 {
                return;
            }
            let row = &x[i * v..(i + 1) * v];
            let lse = logsumexp(row);
            for (o, x) in o.iter_mut().zip(row) {
                *o = scale * (x - lse).exp();
            }
            o[self.targets[i] as usize] -= scale;
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
