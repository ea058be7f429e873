//! Fused CPU kernels, with their backward, for the non-matmul ops that dominate a CPU training
//! step when composed from candle's elementwise ops (one buffer and one pass per op): softmax
//! over the last dimension and rotary embeddings (RMS normalisation is in `fused_norm.rs`).
//! Each one runs on contiguous f32 CPU tensors, row-parallel; anything else (GPU, bf16, strided
//! input) takes the composed path, which computes the same function. Tests compare both
//! paths, forward and backward.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::cpu::{contiguous_f32, f32_inputs, fused_ok};
use super::vmath;

/// Rows of width `width` processed in parallel, `f(input row, output row)`.
fn map_rows(x: &[f32], width: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(width.max(1) * 64)
        .zip(x.par_chunks(width.max(1) * 64))
        .for_each(|(o, i)| {
            for (orow, irow) in o.chunks_mut(width).zip(i.chunks(width)) {
                f(irow, orow);
            }
        });
    out
}

/// Rows of two same-shaped inputs processed in parallel, `f(a row, b row, output row)`.
fn map_rows2(a: &[f32], b: &[f32], width: usize, f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let block = width.max(1) * 64;
    let mut out = vec![0f32; a.len()];
    out.par_chunks_mut(block)
        .zip(a.par_chunks(block).zip(b.par_chunks(block)))
        .for_each(|(o, (a, b))| {
            for ((o, a), b) in o.chunks_mut(width).zip(a.chunks(width)).zip(b.chunks(width)) {
                f(a, b, o);
            }
        });
    out
}

// ---------------------------------------------------------------------------------------------
// softmax

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let w = l.dims().last().copied().unwrap_or(1);
        let out = map_rows(x, w, |i, o| {
            o.copy_from_slice(i);
            super::vmath::softmax_in_place(o);
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?))
    }
}

/// dx = y · (dy − Σ dy·y), row by row.
struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-softmax-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let [y, dy] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        let w = l1.dims().last().copied().unwrap_or(1);
        let out = map_rows2(y, dy, w, |y, dy, o| {
            let dot: f32 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
            for ((o, y), dy) in o.iter_mut().zip(y).zip(dy) {
                *o = y * (dy - dot);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Softmax over the last dimension (differentiable).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if fused_ok(&[x]) {
        x.apply_op1(Softmax)
    } else if x.device().is_cuda() {
        // candle's fused kernel, with our backward
        super::device_fused::softmax_last_dim(x)
    } else {
        softmax_composed(x)
    }
}

/// The composed path of [`softmax_last_dim`] (any device and dtype).
pub fn softmax_composed(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(x, D::Minus1)
}

// ---------------------------------------------------------------------------------------------
// RMS normalisation (without the weight), composed; `fused_norm.rs` fuses it with the weight

/// x / sqrt(mean(x², last dim) + ε), computed in f32 whatever `x`'s dtype (differentiable).
pub(crate) fn rms_normalize_composed(x: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.to_dtype(dtype)
}

// ---------------------------------------------------------------------------------------------
// rotary embeddings, half-split pairing: y = x·cos + rotate_half(x)·sin

/// cos and sin tables (positions × head dim), shared by the ops of a model.
#[derive(Debug, Clone)]
pub struct RopeTables {
    cos: Arc<Vec<f32>>,
    sin: Arc<Vec<f32>>,
    head_dim: usize,
}

impl RopeTables {
    /// Tables of `positions` rows of `head_dim` values.
    pub fn new(cos: Vec<f32>, sin: Vec<f32>, head_dim: usize) -> Self {
        Self {
            cos: Arc::new(cos),
            sin: Arc::new(sin),
            head_dim,
        }
    }

    /// The width of a head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// The cos and sin tables, positions × head dim, row-major.
    pub fn cos_sin(&self) -> (&[f32], &[f32]) {
        (&self.cos, &self.sin)
    }
}

struct Rope {
    tables: RopeTables,
    /// +1: rotate by the angles; −1: by their opposite (the backward).
    sign: f32,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "fused-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let dims = l.dims();
        let (t, d) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        if d != self.tables.head_dim || t * d > self.tables.cos.len() {
            candle_core::bail!("rope: input (…, {t}, {d}) does not fit the tables");
        }
        let (cos, sin, sign) = (&self.tables.cos, &self.tables.sin, self.sign);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(t * d).zip(x.par_chunks(t * d)).for_each(|(o, x)| {
            vmath::wide(
                #[inline(always)]
                || {
                    for p in 0..t {
                        let (c, s) = (&cos[p * d..(p + 1) * d], &sin[p * d..(p + 1) * d]);
                        let (xr, or) = (&x[p * d..(p + 1) * d], &mut o[p * d..(p + 1) * d]);
                        // rotate_half(x)[j] = −x[j + half]; rotate_half(x)[j + half] = x[j]
                        vmath::rotate_half(or, xr, c, s, sign, 1.0);
                    }
                },
            )
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // a rotation's transpose is the rotation by the opposite angles
        let back = Rope {
            tables: self.tables.clone(),
            sign: -self.sign,
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&back)?))
    }
}

/// Rotates `x` (…, T, head dim) by the angles of positions 0..T (differentiable); `cos`/`sin`
/// are the tensors of the same tables, for the composed path.
pub fn rope(x: &Tensor, tables: &RopeTables, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if fused_ok(&[x]) {
        return x.apply_op1(Rope {
            tables: tables.clone(),
            sign: 1.0,
        });
    }
    if x.device().is_cuda() && x.rank() == 4 {
        // candle's fused kernel, both ways
        return super::device_fused::rope(x, cos, sin);
    }
    rope_composed(x, cos, sin)
}

/// The composed path of [`rope`].
pub fn rope_composed(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let t = x.dim(D::Minus2)?;
    let cos = cos.narrow(0, 0, t)?.to_dtype(x.dtype())?;
    let sin = sin.narrow(0, 0, t)?.to_dtype(x.dtype())?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
}
