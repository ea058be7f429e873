//! Rotary position embeddings with the half-split ("NeoX", HF Llama `rotate_half`) pairing:
//! dimension i pairs with i + d/2. Written with differentiable ops (candle's fused `rope` has no
//! backward). Mirrors `apply_rotary_pos_emb` in transformers' `modeling_llama.py`.

use candle_core::{DType, Device, Result, Tensor};

use super::kernels::fused::{rope, RopeTables};

/// cos and sin tables of shape (max positions, head dim), built once.
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    cos: Tensor,
    sin: Tensor,
    tables: RopeTables,
}

impl RotaryEmbedding {
    /// Tables for `max_positions` positions of heads of width `head_dim` with base `theta`.
    pub fn new(head_dim: usize, max_positions: usize, theta: f64, device: &Device) -> Result<Self> {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(max_positions * head_dim);
        let mut sin = Vec::with_capacity(max_positions * head_dim);
        for pos in 0..max_positions {
            // inv_freq computed in f32 as transformers does, angles in f32
            let angles: Vec<f32> = (0..half)
                .map(|i| {
                    let inv_freq = 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32);
                    pos as f32 * inv_freq
                })
                .collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos()));
                sin.extend(angles.iter().map(|a| a.sin()));
            }
        }
        Ok(Self {
            cos: Tensor::from_slice(&cos, (max_positions, head_dim), device)?,
            sin: Tensor::from_slice(&sin, (max_positions, head_dim), device)?,
            tables: RopeTables::new(cos, sin, head_dim),
        })
    }

    /// Rotates `x` of shape (B, heads, T, head dim) by the angles of positions `0..T`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        rope(x, &self.tables, &self.cos, &self.sin)
    }

    /// The cos and sin tables as tensors (positions × head dim).
    pub fn tables(&self) -> (&Tensor, &Tensor) {
        (&self.cos, &self.sin)
    }

    /// The tables as the fused CPU kernels take them.
    pub fn fused_tables(&self) -> &RopeTables {
        &self.tables
    }

    /// The dtype of the tables.
    pub fn dtype(&self) -> DType {
        self.cos.dtype()
    }
}
