//! One pre-norm block: x + attn(norm(x)), then + mlp(norm(·)) (HF `LlamaDecoderLayer`).
//! Contiguous f32 CPU input runs the whole block as one op (`fused_block.rs`); anything else
//! the parts' own ops.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::Attention;
use super::checkpointing::checkpointed;
use super::config::ModelConfig;
use super::kernels::cpu::fused_ok;
use super::kernels::fused_block::{block, BlockSpec, BlockWeights};
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
        let weights = BlockWeights {
            norm1: &self.input_layernorm.weight,
            attention: self.self_attn.weights(),
            norm2: &self.post_attention_layernorm.weight,
            mlp: self.mlp.weights(),
        };
        let [q, k, v, o] = weights.attention;
        let [gate, up, down] = weights.mlp;
        let all = [x, weights.norm1, q, k, v, o, weights.norm2, gate, up, down];
        if fused_ok(&all) && x.rank() == 3 && self.input_layernorm.eps == self.post_attention_layernorm.eps {
            // the whole block as one op
            let spec = BlockSpec {
                attention: self.self_attn.spec(rope, mask),
                intermediate: gate.dim(0)?,
                eps: self.input_layernorm.eps as f32,
            };
            return block(x, &weights, &spec);
        }
        let x = (x + self.self_attn.forward(&self.input_layernorm.forward(x)?, rope, mask)?)?;
        &x + self.mlp.forward(&self.post_attention_layernorm.forward(&x)?)?
    }

    /// [`Block::forward`] with activation checkpointing: no activation kept for the backward,
    /// which runs the forward again (`checkpointing.rs`). The same values and gradients.
    pub fn forward_checkpointed(&self, x: &Tensor, rope: &RotaryEmbedding, mask: &AttentionMask) -> Result<Tensor> {
        let [q, k, v, o] = self.self_attn.weights();
        let [gate, up, down] = self.mlp.weights();
        let weights = [
            &self.input_layernorm.weight,
            q,
            k,
            v,
            o,
            &self.post_attention_layernorm.weight,
            gate,
            up,
            down,
        ]
        .into_iter()
        .cloned()
        .collect();
        let (block, rope, mask) = (self.clone(), rope.clone(), mask.clone());
        checkpointed(x, weights, std::sync::Arc::new(move |x| block.forward(x, &rope, &mask)))
    }
}
