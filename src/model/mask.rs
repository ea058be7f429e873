//! The additive attention bias: the attention mode (causal or not) combined with a padding mask,
//! in one convention: 0 where a query may attend to a key, a large negative number where not.

use candle_core::{DType, Device, Result, Tensor};

use super::config::AttentionMode;

/// Added to the scores of keys a query may not see: finite, so that a row never becomes NaN,
/// and large enough that its softmax weight is exactly 0 in f32.
pub const MASKED: f32 = -1e9;

/// The bias of shape (B or 1, 1, T, T) for `mode` and an optional padding mask (B, T) with 1 for
/// tokens and 0 for padding (any dtype). `None` when nothing is masked.
pub fn attention_bias(
    mode: AttentionMode,
    padding: Option<&Tensor>,
    t: usize,
    device: &Device,
) -> Result<Option<Tensor>> {
    let causal = match mode {
        AttentionMode::Causal => {
            let bias: Vec<f32> = (0..t * t).map(|k| if k % t > k / t { MASKED } else { 0.0 }).collect();
            Some(Tensor::from_vec(bias, (1, 1, t, t), device)?)
        }
        AttentionMode::Bidirectional => None,
    };
    let padding = match padding {
        Some(p) => {
            let (b, tp) = p.dims2()?;
            if tp != t {
                candle_core::bail!("padding mask has {tp} positions, the input {t}");
            }
            // keys that are padding: (1 - p) * MASKED, shape (B, 1, 1, T)
            let keep = p.to_dtype(DType::F32)?;
            Some(((1.0 - keep)? * f64::from(MASKED))?.reshape((b, 1, 1, t))?)
        }
        None => None,
    };
    Ok(match (causal, padding) {
        (Some(c), Some(p)) => Some(c.broadcast_add(&p)?),
        (c, p) => c.or(p),
    })
}
