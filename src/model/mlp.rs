//! The SwiGLU MLP without biases: down(silu(gate(x)) · up(x)) (HF `LlamaMLP`).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::ModelConfig;
use super::linear::Linear;

/// gate/up/down projections of one block.
#[derive(Debug, Clone)]
pub struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    /// The projections under `vb` (`…mlp`).
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let get = |name: &str, shape: (usize, usize)| -> Result<Linear> {
            Ok(Linear::new(vb.pp(name).get(shape, "weight")?))
        };
        Ok(Self {
            gate_proj: get("gate_proj", (i, h))?,
            up_proj: get("up_proj", (i, h))?,
            down_proj: get("down_proj", (h, i))?,
        })
    }
}

impl Mlp {
    /// The gate, up and down weights.
    pub(super) fn weights(&self) -> [&Tensor; 3] {
        [&self.gate_proj, &self.up_proj, &self.down_proj].map(Linear::weight)
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::kernels::fused_mlp::mlp(
            x,
            self.gate_proj.weight(),
            self.up_proj.weight(),
            self.down_proj.weight(),
        )
    }
}
