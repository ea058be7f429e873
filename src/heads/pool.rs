//! Pooling a sequence's hidden states into one vector, over its non-padding tokens only.

use candle_core::{Result, Tensor, D};
use serde::{Deserialize, Serialize};

/// How a sequence becomes one vector.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean of the non-padding tokens (the default; the paper's for retrieval).
    #[default]
    Mean,
    /// The first non-padding token.
    First,
    /// The last non-padding token (a causal model's summary of the whole input).
    Last,
}

/// Pools `hidden` (B, T, H) over the positions where `padding` (B, T) is 1 → (B, H). A row
/// without any token pools to zeros (mean) or its position 0 (first, last).
pub fn pool(hidden: &Tensor, padding: &Tensor, pooling: Pooling) -> Result<Tensor> {
    let (b, t, h) = hidden.dims3()?;
    let padding = padding.to_dtype(hidden.dtype())?;
    match pooling {
        Pooling::Mean => {
            let summed = hidden.broadcast_mul(&padding.unsqueeze(2)?)?.sum(1)?;
            let counts = padding.sum_keepdim(D::Minus1)?.clamp(1.0, f64::INFINITY)?;
            summed.broadcast_div(&counts)
        }
        Pooling::First | Pooling::Last => {
            let mask = padding.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
            let rows: Vec<u32> = mask
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let mut tokens = row.iter().enumerate().filter(|(_, m)| **m > 0.5).map(|(j, _)| j);
                    let j = if pooling == Pooling::First {
                        tokens.next()
                    } else {
                        tokens.next_back()
                    };
                    (i * t + j.unwrap_or(0)) as u32
                })
                .collect();
            let index = Tensor::from_vec(rows, b, hidden.device())?;
            hidden.reshape((b * t, h))?.index_select(&index, 0)
        }
    }
}
