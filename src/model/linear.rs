//! A projection without bias whose weight is cast to its input's dtype at use: the weights
//! stay f32 (what the optimizer updates and checkpoints hold) while a bf16 run multiplies in
//! bf16, as PyTorch's autocast does (the product is `kernels::fused_linear`).

use candle_core::{Module, Result, Tensor};

use super::kernels::fused_linear::linear;

/// y = x · Wᵀ, W of shape (outputs, inputs).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
}

impl Linear {
    /// The projection by `weight` (outputs, inputs).
    pub fn new(weight: Tensor) -> Self {
        Self { weight }
    }

    /// The weight, in its stored dtype.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear(x, &self.weight)
    }
}
