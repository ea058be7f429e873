//! One pre-norm block: x + attn(norm(x)), then + mlp(norm(·)) (HF `LlamaDecoderLayer`).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::Attention;
use super::config::ModelConfig;
use super::mask::AttentionMask;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::rope::RotaryEmbedding;

/// A transformer block.
#[derive(Debug, Clone)]
pub struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    /// The block under `vb` (`model.layers.{i}`).
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            input_layernorm: RmsNorm::new(h, cfg.rms_norm_eps, vb.pp("input_layernorm"))?,
            self_attn: Attention::new(cfg, vb.pp("self_attn"))?,
            post_attention_layernorm: RmsNorm::new(h, cfg.rms_norm_eps, vb.pp("post_attention_layernorm"))?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
        })
    }

    /// # Shapes
    /// `x`: (B, T, H) → (B, T, H).
    pub fn forward(&self, x: &Tensor, rope: &RotaryEmbedding, mask: &AttentionMask) -> Result<Tensor> {
        let x = (x + self.self_attn.forward(&self.input_layernorm.forward(x)?, rope, mask)?)?;
        &x + self.mlp.forward(&self.post_attention_layernorm.forward(&x)?)?
    }
}
