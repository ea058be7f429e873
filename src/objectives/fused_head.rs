//! The LM head and the cross entropy fused on the CPU: logits = hidden · Wᵀ, then per row
//! w · (logsumexp − logit\[target\]), in one op whose forward turns the logits into softmax
//! probabilities in place and keeps them for the backward (g·w·(p − one-hot), then the two
//! products for the hidden states and W). Composed, the same function allocates the logits,
//! their gradient and a zeroed accumulator for it, each rows × V floats, and passes over them
//! half a dozen times; the head is the largest matmul of a small-model step. Other devices and
//! dtypes take `head` + `summed_cross_entropy`; `tests/objectives.rs`
//! compares the two paths.
// N = rows, H = hidden, V = vocab

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::model::kernels::cpu::{contiguous_f32, split_flat};
use crate::model::kernels::gemm::{par_matmuls, Product};
use crate::model::kernels::vmath;

/// Σ w · (−log softmax(hidden · Wᵀ)\[target\]) over the rows, for contiguous f32 CPU `hidden`
/// (N, H) and `weight` (V, H) (differentiable in both).
pub fn fused_head_cross_entropy(hidden: &Tensor, weight: &Tensor, targets: &[u32], weights: &[f32]) -> Result<Tensor> {
    let (n, _) = hidden.dims2()?;
    let (v, _) = weight.dims2()?;
    if targets.len() != n || weights.len() != n {
        candle_core::bail!("{n} hidden rows, {} targets, {} weights", targets.len(), weights.len());
    }
    if let Some(bad) = targets.iter().find(|t| **t as usize >= v) {
        candle_core::bail!("target id {bad} outside the vocabulary of {v}");
    }
    let op = HeadLoss {
        targets: Arc::new(targets.to_vec()),
        weights: Arc::new(weights.to_vec()),
        probs: Arc::new(Mutex::new(None)),
    };
    hidden.apply_op2(weight, op)?.sum_all()
}

/// Whether [`fused_head_cross_entropy`] takes these tensors.
pub(crate) fn fused_head_ok(hidden: &Tensor, weight: &Tensor) -> bool {
    crate::model::kernels::cpu::fused_ok(&[hidden, weight])
}

struct HeadLoss {
    targets: Arc<Vec<u32>>,
    weights: Arc<Vec<f32>>,
    /// The softmax of the last forward, for the backward.
    probs: Arc<Mutex<Option<Vec<f32>>>>,
}

/// Shapes (N, H) and (V, H) checked against each other: (N, H, V).
fn dims(l1: &Layout, l2: &Layout) -> Result<(usize, usize, usize)> {
    let (n, h) = l1.shape().dims2()?;
    let (v, h2) = l2.shape().dims2()?;
    if h != h2 {
        candle_core::bail!(
            "fused head: hidden {:?} and head {:?} differ in width",
            l1.dims(),
            l2.dims()
        );
    }
    Ok((n, h, v))
}

impl HeadLoss {
    /// Softmax probabilities (N × V) and the loss of each row.
    fn forward(
        &self,
        hidden: &[f32],
        weight: &[f32],
        (n, h, v): (usize, usize, usize),
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut probs = par_matmuls(&[Product {
            m: n,
            n: v,
            k: h,
            lhs: (hidden, h, 1),
            rhs: (weight, 1, h),
        }])?;
        let mut losses = vec![0f32; n];
        probs
            .par_chunks_mut(v)
            .zip(losses.par_iter_mut())
            .enumerate()
            .for_each(|(i, (row, loss))| {
                let w = self.weights[i];
                if w == 0.0 {
                    row.fill(0.0);
                    return;
                }
                let picked = row[self.targets[i] as usize];
                let (max, sum) = vmath::softmax_in_place(row);
                *loss = w * (max + sum.ln() - picked);
            });
        Ok((probs, losses))
    }
}

impl CustomOp2 for HeadLoss {
    fn name(&self) -> &'static str {
        "fused-head-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let shape = dims(l1, l2)?;
        let (hidden, weight) = (
            contiguous_f32(s1, l1, self.name())?,
            contiguous_f32(s2, l2, self.name())?,
        );
        let (probs, losses) = self.forward(hidden, weight, shape)?;
        if let Ok(mut kept) = self.probs.lock() {
            *kept = Some(probs);
        }
        Ok((CpuStorage::F32(losses), Shape::from(shape.0)))
    }

    fn bwd(
        &self,
        hidden: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let back = HeadLossGrad {
            forward: HeadLoss {
                targets: self.targets.clone(),
                weights: self.weights.clone(),
                probs: self.probs.clone(),
            },
            grad: grad.to_dtype(DType::F32)?.to_vec1()?,
        };
        let all = hidden.apply_op2_no_bwd(weight, &back)?;
        let mut grads = split_flat(&all, &[hidden, weight])?.into_iter();
        Ok((grads.next(), grads.next()))
    }
}

/// [d hidden | d W], flat, given the gradient of each row's loss.
struct HeadLossGrad {
    forward: HeadLoss,
    grad: Vec<f32>,
}

impl CustomOp2 for HeadLossGrad {
    fn name(&self) -> &'static str {
        "fused-head-cross-entropy-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, h, v) = dims(l1, l2)?;
        let (hidden, weight) = (
            contiguous_f32(s1, l1, self.name())?,
            contiguous_f32(s2, l2, self.name())?,
        );
        // the forward's probabilities, or recomputed when taken by an earlier backward
        let kept = self.forward.probs.lock().ok().and_then(|mut p| p.take());
        let mut d_logits = match kept {
            Some(p) if p.len() == n * v => p,
            _ => self.forward.forward(hidden, weight, (n, h, v))?.0,
        };
        let (targets, weights) = (&self.forward.targets, &self.forward.weights);
        d_logits.par_chunks_mut(v).enumerate().for_each(|(i, row)| {
            let scale = self.grad[i] * weights[i];
            crate::model::kernels::vmath::scale(row, scale);
            row[targets[i] as usize] -= scale;
        });
        let d_hidden = Product {
            m: n,
            n: h,
            k: v,
            lhs: (&d_logits, v, 1),
            rhs: (weight, h, 1),
        };
        let d_weight = Product {
            m: v,
            n: h,
            k: n,
            lhs: (&d_logits, 1, v),
            rhs: (hidden, h, 1),
        };
        let all = par_matmuls(&[d_hidden, d_weight])?;
        let len = all.len();
        Ok((CpuStorage::F32(all), Shape::from(len)))
    }
}
