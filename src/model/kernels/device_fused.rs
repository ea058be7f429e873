//! candle's fused kernels made trainable, for a GPU. candle-nn's `softmax_last_dim`,
//! `rms_norm` and `rope` are one kernel each on CUDA, where the composed ops launch five to
//! seven, but they have no backward. Here each forward is candle's fused op on the detached
//! inputs, handed to the graph as the output of an op (`precomputed.rs`) whose backward is:
//! - softmax: dx = y ⊙ (g − Σ g ⊙ y);
//! - RMSNorm y = x·r·w with r = (mean x² + ε)^-½: dx = r·(g⊙w) − x·r³·mean((g⊙w)⊙x),
//!   dw = Σ_rows g⊙x·r, in f32;
//! - RoPE, a rotation of each pair (i, i + d/2) by its angle: dx is the rotation back, the same
//!   fused kernel with −sin.
//!
//! Where our CPU kernels apply they are used instead (`fused.rs`, `fused_norm.rs`); these run on
//! the CPU too (candle's CPU versions of the same ops), which is how `tests/model.rs` checks
//! them against the composed ops.

use candle_core::{DType, Result, Tensor, D};

use super::precomputed::{binary, unary};

/// Softmax over the last dimension: candle's fused forward, the analytic backward.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let y = candle_nn::ops::softmax_last_dim(&x.detach().contiguous()?)?;
    let out = y.clone();
    let backward = move |_: &Tensor, grad: &Tensor| {
        let g = grad.to_dtype(y.dtype())?;
        let dot = (&g * &y)?.sum_keepdim(D::Minus1)?;
        Ok(Some((&y * g.broadcast_sub(&dot)?)?))
    };
    unary("fused-softmax-trainable", x, out, Box::new(backward))
}

/// RMSNorm with weight `w` over the last dimension: candle's fused forward (in `x`'s dtype,
/// accumulated in f32), the analytic backward in f32.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let y = candle_nn::ops::rms_norm(&x.detach().contiguous()?, &w.detach().to_dtype(x.dtype())?, eps as f32)?;
    let backward = move |x: &Tensor, w: &Tensor, grad: &Tensor| {
        let (xf, wf, gf) = (
            x.to_dtype(DType::F32)?,
            w.to_dtype(DType::F32)?,
            grad.to_dtype(DType::F32)?,
        );
        let r = (xf.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?; // (…, 1)
        let gw = gf.broadcast_mul(&wf)?;
        let m = (&gw * &xf)?.mean_keepdim(D::Minus1)?; // (…, 1)
        let dx = (gw.broadcast_mul(&r)? - xf.broadcast_mul(&(r.powf(3.0)? * m)?)?)?;
        let dw = (gf * xf.broadcast_mul(&r)?)?.reshape(((), wf.dim(0)?))?.sum(0)?;
        Ok((Some(dx.to_dtype(x.dtype())?), Some(dw.to_dtype(w.dtype())?)))
    };
    binary("fused-rms-norm-trainable", x, w, y, Box::new(backward))
}

/// Rotary embeddings (half-split pairs) of `x` (B, heads, T, head dim) with the tables `cos`
/// and `sin` (positions × head dim, each half repeated): candle's fused kernel forward and
/// backward.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    rope_in(x, cos, sin, Layout::Bhtd)
}

/// [`rope`] of `x` laid out (B, T, heads, head dim), as the projections lie and flash
/// attention takes them (`flash.rs`): no transposed copy.
pub fn rope_thd(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    rope_in(x, cos, sin, Layout::Bthd)
}

/// Where the positions of a 4-dimensional `x` are.
#[derive(Clone, Copy)]
enum Layout {
    /// (B, heads, T, head dim).
    Bhtd,
    /// (B, T, heads, head dim).
    Bthd,
}

fn rope_in(x: &Tensor, cos: &Tensor, sin: &Tensor, layout: Layout) -> Result<Tensor> {
    let (_, a, b, d) = x.dims4()?;
    let t = match layout {
        Layout::Bhtd => b,
        Layout::Bthd => a,
    };
    let half = |table: &Tensor| {
        table
            .narrow(0, 0, t)?
            .narrow(1, 0, d / 2)?
            .to_dtype(x.dtype())?
            .contiguous()
    };
    let (cos, sin) = (half(cos)?, half(sin)?);
    let kernel = move |x: &Tensor, cos: &Tensor, sin: &Tensor| match layout {
        Layout::Bhtd => candle_nn::rotary_emb::rope(x, cos, sin),
        Layout::Bthd => candle_nn::rotary_emb::rope_thd(x, cos, sin),
    };
    let y = kernel(&x.detach().contiguous()?, &cos, &sin)?;
    let dtype = y.dtype();
    let backward = move |_: &Tensor, grad: &Tensor| {
        let g = grad.to_dtype(dtype)?.contiguous()?;
        Ok(Some(kernel(&g, &cos, &sin.neg()?)?))
    };
    unary("fused-rope-trainable", x, y, Box::new(backward))
}
