//! The additive attention bias: the attention mode (causal or not) combined with a padding mask,
//! in one convention: 0 where a query may attend to a key, a large negative number where not.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::config::AttentionMode;
use super::kernels::flash::Padding;

/// Added to the scores of keys a query may not see: finite, so that a row never becomes NaN,
/// and large enough that its softmax weight is exactly 0 in f32.
pub const MASKED: f32 = -1e9;

/// The mask of one forward, in the two forms the attention paths take.
#[derive(Debug, Clone)]
pub struct AttentionMask {
    /// The additive bias tensor (composed path), as [`attention_bias`] gives it.
    pub bias: Option<Tensor>,
    /// Whether queries see only keys at or before their position.
    pub causal: bool,
    /// Padding as an additive bias per (sequence, key), B·T values (fused CPU path).
    pub key_bias: Option<Arc<Vec<f32>>>,
    /// Padding as flash attention takes it (`kernels/flash.rs`).
    pub padding: Option<Padding>,
}

impl AttentionMask {
    /// The mask for `mode` and an optional padding mask (B, T), 1 = token, 0 = padding.
    pub fn new(mode: AttentionMode, padding: Option<&Tensor>, t: usize, device: &Device) -> Result<Self> {
        // the padding's values on the host, read once: the fused CPU kernel's key bias, and the
        // lengths flash attention's kernel packs by (not read on a GPU without that kernel: a
        // synchronisation nobody would use)
        let keep = padding.map(|p| p.to_dtype(DType::F32)).transpose()?;
        let host: Option<Vec<f32>> = match &keep {
            Some(k) if device.is_cpu() || cfg!(feature = "flash-attn") => Some(k.flatten_all()?.to_vec1()?),
            _ => None,
        };
        let key_bias = match &host {
            Some(values) if device.is_cpu() => Some(Arc::new(values.iter().map(|k| (1.0 - k) * MASKED).collect())),
            _ => None,
        };
        Ok(Self {
            bias: attention_bias(mode, padding, t, device)?,
            causal: mode == AttentionMode::Causal,
            key_bias,
            padding: keep.map(|k| Padding::new(k, host.as_deref())).transpose()?,
        })
    }
}

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
