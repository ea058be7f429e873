//! candle's fused kernels made trainable, for a GPU. candle-nn's `softmax_last_dim`,
//! `rms_norm` and `rope` are one kernel each on CUDA, where the composed ops launch five to
//! seven, but they have no backward. Here each forward is candle's fused op on the detached inputs, handed to
//! the graph as the output of an op whose backward is the analytic gradient in composed ops:
//! - softmax: dx = y ⊙ (g − Σ g ⊙ y);
//! - RMSNorm y = x·r·w with r = (mean x² + ε)^-½: dx = r·(g⊙w) − x·r³·mean((g⊙w)⊙x),
//!   dw = Σ_rows g⊙x·r, in f32;
//! - RoPE, a rotation of each pair (i, i + d/2) by its angle: dx is the rotation back, the same
//!   fused kernel with −sin.
//!
//! Where our CPU kernels apply they are used instead (`fused.rs`, `fused_norm.rs`); these run on
//! the CPU too (candle's CPU versions of the same ops), which is how `tests/model.rs` checks
//! them against the composed ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

use crate::model::checkpointing::cpu_result;
#[cfg(feature = "cuda")]
use crate::model::checkpointing::cuda_result;

/// Softmax over the last dimension: candle's fused forward, the analytic backward.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let y = candle_nn::ops::softmax_last_dim(&x.detach().contiguous()?)?;
    x.apply_op1(Softmax { y })
}

struct Softmax {
    y: Tensor,
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax-trainable"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_result(&self.y, self.name())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, _: &candle_core::CudaStorage, _: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda_result(&self.y, self.name())
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let y = &self.y;
        let g = grad.to_dtype(y.dtype())?;
        let dot = (&g * y)?.sum_keepdim(D::Minus1)?;
        Ok(Some((y * g.broadcast_sub(&dot)?)?))
    }
}

/// RMSNorm with weight `w` over the last dimension: candle's fused forward (in `x`'s dtype,
/// accumulated in f32), the analytic backward in f32.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let y = candle_nn::ops::rms_norm(&x.detach().contiguous()?, &w.detach().to_dtype(x.dtype())?, eps as f32)?;
    x.apply_op2(w, RmsNorm { y, eps })
}

struct RmsNorm {
    y: Tensor,
    eps: f64,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm-trainable"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_result(&self.y, self.name())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda_result(&self.y, self.name())
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (xf, wf, gf) = (
            x.to_dtype(DType::F32)?,
            w.to_dtype(DType::F32)?,
            grad.to_dtype(DType::F32)?,
        );
        let r = (xf.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?.sqrt()?.recip()?; // (…, 1)
        let gw = gf.broadcast_mul(&wf)?;
        let m = (&gw * &xf)?.mean_keepdim(D::Minus1)?; // (…, 1)
        let dx = (gw.broadcast_mul(&r)? - xf.broadcast_mul(&(r.powf(3.0)? * m)?)?)?;
        let width = wf.dim(0)?;
        let dw = (gf * xf.broadcast_mul(&r)?)?.reshape(((), width))?.sum(0)?;
        Ok((Some(dx.to_dtype(x.dtype())?), Some(dw.to_dtype(w.dtype())?)))
    }
}

/// Rotary embeddings (half-split pairs) of `x` (B, heads, T, head dim) with the tables `cos`
/// and `sin` (positions × head dim, each half repeated): candle's fused kernel forward and
/// backward.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (t, d) = (x.dim(D::Minus2)?, x.dim(D::Minus1)?);
    let half = |table: &Tensor| {
        table
            .narrow(0, 0, t)?
            .narrow(1, 0, d / 2)?
            .to_dtype(x.dtype())?
            .contiguous()
    };
    let (cos, sin) = (half(cos)?, half(sin)?);
    let y = candle_nn::rotary_emb::rope(&x.detach().contiguous()?, &cos, &sin)?;
    x.apply_op1(Rope { y, cos, sin })
}

struct Rope {
    y: Tensor,
    cos: Tensor,
    sin: Tensor,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "fused-rope-trainable"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_result(&self.y, self.name())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, _: &candle_core::CudaStorage, _: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda_result(&self.y, self.name())
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = grad.to_dtype(self.y.dtype())?.contiguous()?;
        Ok(Some(candle_nn::rotary_emb::rope(&g, &self.cos, &self.sin.neg()?)?))
    }
}
