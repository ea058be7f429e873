//! RMSNorm computed in f32 whatever the input dtype, with a backward (candle's fused `rms_norm`
//! has none on contiguous input): our fused kernel on CPU, composed ops elsewhere. Mirrors
//! `LlamaRMSNorm`.

use candle_core::{Module, Result, Tensor};

/// x / sqrt(mean(x²) + ε) · weight.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    pub(super) weight: Tensor,
    pub(super) eps: f64,
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
        super::kernels::fused_norm::rms_norm(x, &self.weight, self.eps)
    }
}
