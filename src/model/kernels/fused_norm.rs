//! RMSNorm with its weight, x / sqrt(mean(x²) + ε) · w, fused on the CPU with its backward:
//! the weight's gradient is summed over rows in fixed blocks of rows, combined in block order
//! (so the thread count never changes a bit), instead of candle's broadcast product and its
//! strided reduction. Other devices and dtypes take the composed ops (computed in f32);
//! `tests/model.rs` compares the two.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_inputs, fused_ok, pair_grads};
use super::vmath;

/// Rows per parallel task.
const ROWS: usize = 64;

/// RMSNorm of `x` (…, W) with `weight` (W) (differentiable in both).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if fused_ok(&[x, weight]) && weight.dims1()? == x.dim(candle_core::D::Minus1)? {
        x.apply_op2(weight, RmsNorm { eps: eps as f32 })
    } else if x.device().is_cuda() {
        // candle's fused kernel, with our backward
        super::device_fused::rms_norm(x, weight, eps)
    } else {
        rms_norm_composed(x, weight, eps)
    }
}

/// The composed path of [`rms_norm`].
pub fn rms_norm_composed(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let normalized = super::fused::rms_normalize_composed(x, eps)?;
    normalized.broadcast_mul(&weight.to_dtype(x.dtype())?)
}

/// 1 / sqrt(mean(x²) + ε) of one row.
#[inline(always)]
fn inv_rms(x: &[f32], eps: f32) -> f32 {
    1.0 / (vmath::dot(x, x) / x.len() as f32 + eps).sqrt()
}

/// RMSNorm of the rows of `x` (each `w.len()` wide) with weight `w`.
pub(super) fn norm_rows(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let width = w.len();
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(width * ROWS)
        .zip(x.par_chunks(width * ROWS))
        .for_each(|(o, x)| {
            vmath::wide(
                #[inline(always)]
                || {
                    for (o, x) in o.chunks_mut(width).zip(x.chunks(width)) {
                        let r = inv_rms(x, eps);
                        for ((o, x), w) in o.iter_mut().zip(x).zip(w) {
                            *o = x * r * w;
                        }
                    }
                },
            )
        });
    out
}

/// The gradients of [`norm_rows`] given the output's `dy`: `dx` (as x) and `dw` (as w, written
/// whole): with x̂ = x·r and dŷ = dy·w, dx = r · (dŷ − x̂ · mean(dŷ · x̂)) and dw = Σ_rows dy · x̂,
/// summed in fixed blocks of rows combined in order.
pub(super) fn norm_grad_rows(dx: &mut [f32], dw: &mut [f32], x: &[f32], w: &[f32], dy: &[f32], eps: f32) {
    let width = w.len();
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(width * ROWS)
        .zip(x.par_chunks(width * ROWS).zip(dy.par_chunks(width * ROWS)))
        .map(|(dx, (x, dy))| {
            vmath::wide(
                #[inline(always)]
                || {
                    let mut dw = vec![0f32; width];
                    for ((dx, x), dy) in dx.chunks_mut(width).zip(x.chunks(width)).zip(dy.chunks(width)) {
                        let r = inv_rms(x, eps);
                        let (x, dy, w) = (&x[..width], &dy[..width], &w[..width]);
                        for j in 0..width {
                            dw[j] += dy[j] * (x[j] * r);
                        }
                        let dot = vmath::sum_by_lanes(width, |j| dy[j] * w[j] * (x[j] * r));
                        let mean = dot / width as f32;
                        for j in 0..width {
                            dx[j] = r * (dy[j] * w[j] - x[j] * r * mean);
                        }
                    }
                    dw
                },
            )
        })
        .collect();
    dw.fill(0.0);
    for part in &partials {
        dw.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
}

struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let [x, w] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        let out = norm_rows(x, w, self.eps);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        pair_grads(x, weight, grad, &RmsNormGrad { eps: self.eps })
    }
}

/// [dx | dw], flat: with x̂ = x·r and dŷ = dy·w, dx = r · (dŷ − x̂ · mean(dŷ · x̂)) and
/// dw = Σ_rows dy · x̂.
struct RmsNormGrad {
    eps: f32,
}

impl CustomOp3 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "fused-rms-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let [x, w, dy] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let mut out = vec![0f32; x.len() + w.len()];
        let (dx, dw) = out.split_at_mut(x.len());
        norm_grad_rows(dx, dw, x, w, dy, self.eps);
        Ok((CpuStorage::F32(out), Shape::from(x.len() + w.len())))
    }
}
