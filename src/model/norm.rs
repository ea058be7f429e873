//! RMSNorm computed in f32 whatever the input dtype, from differentiable ops (candle's fused
//! `rms_norm` has no backward on contiguous input). Mirrors `LlamaRMSNorm`.

use candle_core::{DType, Module, Result, Tensor, D};

/// x / sqrt(mean(x²) + ε) · weight.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// A norm of width `size` whose weight is `vb`'s `weight`.
    pub fn new(size: usize, eps: f64, vb: candle_nn::VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            eps,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        x.to_dtype(dtype)?.broadcast_mul(&self.weight.to_dtype(dtype)?)
    }
}
