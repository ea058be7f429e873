//! Grouped-query self-attention without biases (HF `LlamaAttention`). It takes the prepared
//! mask and knows nothing about objectives. Contiguous f32 CPU input runs the fused kernel of
//! `fused_attention.rs`; bf16 or f16 on a GPU built with `flash-attn` flash attention
//! (`kernels/flash.rs`); anything else the composed ops.
// B = batch, T = seq len, H = hidden, nh = query heads, nkv = key/value heads, hd = head dim

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::ModelConfig;
use super::kernels::cpu::fused_ok;
use super::kernels::device_fused;
use super::kernels::flash::{self, FlashSpec};
use super::kernels::fused_attention::{fused_attention, AttentionSpec};
use super::linear::Linear;
use super::mask::AttentionMask;
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
    Ok(Linear::new(vb.get((outputs, inputs), "weight")?))
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

    /// The q, k, v and o weights.
    pub(super) fn weights(&self) -> [&Tensor; 4] {
        [&self.q_proj, &self.k_proj, &self.v_proj, &self.o_proj].map(Linear::weight)
    }

    /// What the fused kernels need for this attention under `mask`.
    pub(super) fn spec(&self, rope: &RotaryEmbedding, mask: &AttentionMask) -> AttentionSpec {
        AttentionSpec {
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            causal: mask.causal,
            key_bias: mask.key_bias.clone(),
            tables: rope.fused_tables().clone(),
        }
    }

    /// # Shapes
    /// `x`: (B, T, H) → (B, T, H).
    pub fn forward(&self, x: &Tensor, rope: &RotaryEmbedding, mask: &AttentionMask) -> Result<Tensor> {
        let q = self.q_proj.forward(x)?; // (B, T, nh·hd)
        let k = self.k_proj.forward(x)?; // (B, T, nkv·hd)
        let v = self.v_proj.forward(x)?;
        let y = if fused_ok(&[&q, &k, &v]) {
            fused_attention(&q, &k, &v, &self.spec(rope, mask))?
        } else if flash::kernel_available(&q, self.head_dim) {
            attend_flash(&q, &k, &v, (self.heads, self.kv_heads), rope, mask, None)?
        } else {
            attend_composed(&q, &k, &v, (self.heads, self.kv_heads), rope, mask.bias.as_ref())?
        };
        self.o_proj.forward(&y)
    }
}

/// Attention from projections composed of candle ops (any device and dtype), the function
/// [`fused_attention`] computes. `heads`: (query heads, key/value heads).
///
/// # Shapes
/// `q`: (B, T, nh·hd); `k`, `v`: (B, T, nkv·hd); `bias`: (B or 1, 1, T, T) → (B, T, nh·hd).
pub fn attend_composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: (usize, usize),
    rope: &RotaryEmbedding,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, t, w) = q.dims3()?;
    let (nh, nkv) = heads;
    let hd = w / nh;
    let split = |y: &Tensor, n: usize| y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous();
    let q = rope.apply(&split(q, nh)?)?; // (B, nh, T, hd)
    let k = repeat_kv(rope.apply(&split(k, nkv)?)?, nh / nkv)?; // (B, nh, T, hd)
    let v = repeat_kv(split(v, nkv)?, nh / nkv)?;
    let scale = 1.0 / (hd as f64).sqrt();
    // scores and softmax in f32 whatever the compute dtype (as autocast does)
    let mut scores = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?; // (B, nh, T, T)
    if let Some(bias) = bias {
        scores = scores.broadcast_add(bias)?;
    }
    let weights = super::kernels::fused::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
    let y = weights.matmul(&v)?; // (B, nh, T, hd)
    y.transpose(1, 2)?.reshape((b, t, w))
}

/// Attention from projections by flash attention (`kernels/flash.rs`: the kernel's forward
/// where it runs, else by tiles of `tile_rows` query rows, default as many as fit 256 MiB of
/// scores) with a tiled backward: the function of [`attend_composed`], except that padded query
/// rows give 0. `heads`: (query heads, key/value heads).
///
/// # Shapes
/// `q`: (B, T, nh·hd); `k`, `v`: (B, T, nkv·hd) → (B, T, nh·hd).
pub fn attend_flash(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: (usize, usize),
    rope: &RotaryEmbedding,
    mask: &AttentionMask,
    tile_rows: Option<usize>,
) -> Result<Tensor> {
    let (b, t, w) = q.dims3()?;
    let (nh, nkv) = heads;
    let hd = w / nh;
    let (cos, sin) = rope.tables();
    // (B, T, heads, hd) as the projections lie: no transposed copy before the kernel
    let split = |y: &Tensor, n: usize| y.reshape((b, t, n, hd));
    let q = device_fused::rope_thd(&split(q, nh)?, cos, sin)?;
    let k = device_fused::rope_thd(&split(k, nkv)?, cos, sin)?;
    let spec = FlashSpec {
        causal: mask.causal,
        bias: mask.bias.clone(),
        padding: mask.padding.clone(),
        tile_rows,
    };
    flash::attention(&q, &k, &split(v, nkv)?, &spec)?.reshape((b, t, w))
}

/// Each key/value head repeated for the `n` query heads of its group: (B, nkv, T, hd) →
/// (B, nkv·n, T, hd), heads of a group adjacent (HF `repeat_kv`).
pub(crate) fn repeat_kv(x: Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x);
    }
    let (b, kv, t, hd) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, kv, n, t, hd))?
        .reshape((b, kv * n, t, hd))
}
