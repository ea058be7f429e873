//! Grouped-query self-attention without biases (HF `LlamaAttention`). It takes the prepared
//! additive bias and knows nothing about objectives.
// B = batch, T = seq len, H = hidden, nh = query heads, nkv = key/value heads, hd = head dim

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::config::ModelConfig;
use super::rope::RotaryEmbedding;

/// q/k/v/o projections of one block.
#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

fn linear(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Linear> {
    Ok(Linear::new(vb.get((outputs, inputs), "weight")?, None))
}

impl Attention {
    /// The projections under `vb` (`…self_attn`).
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        Ok(Self {
            q_proj: linear(h, cfg.num_attention_heads * hd, vb.pp("q_proj"))?,
            k_proj: linear(h, cfg.num_key_value_heads * hd, vb.pp("k_proj"))?,
            v_proj: linear(h, cfg.num_key_value_heads * hd, vb.pp("v_proj"))?,
            o_proj: linear(cfg.num_attention_heads * hd, h, vb.pp("o_proj"))?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: hd,
        })
    }

    /// # Shapes
    /// `x`: (B, T, H); `bias`: (B or 1, 1, T, T) or none → (B, T, H).
    pub fn forward(&self, x: &Tensor, rope: &RotaryEmbedding, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor, n: usize| y.reshape((b, t, n, self.head_dim))?.transpose(1, 2)?.contiguous();
        let q = split(self.q_proj.forward(x)?, self.heads)?; // (B, nh, T, hd)
        let k = split(self.k_proj.forward(x)?, self.kv_heads)?; // (B, nkv, T, hd)
        let v = split(self.v_proj.forward(x)?, self.kv_heads)?;
        let q = rope.apply(&q)?;
        let k = repeat_kv(rope.apply(&k)?, self.heads / self.kv_heads)?; // (B, nh, T, hd)
        let v = repeat_kv(v, self.heads / self.kv_heads)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?; // (B, nh, T, T)
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let weights = super::fused::softmax_last_dim(&scores)?;
        let y = weights.matmul(&v)?; // (B, nh, T, hd)
        let y = y.transpose(1, 2)?.reshape((b, t, self.heads * self.head_dim))?;
        self.o_proj.forward(&y)
    }
}

/// Each key/value head repeated for the `n` query heads of its group: (B, nkv, T, hd) →
/// (B, nkv·n, T, hd), heads of a group adjacent (HF `repeat_kv`).
pub fn repeat_kv(x: Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x);
    }
    let (b, kv, t, hd) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, kv, n, t, hd))?
        .reshape((b, kv * n, t, hd))
}
