//! Attention that never holds a (T, T) score matrix per head: the forward is flash attention
//! (FlashAttention-2, `candle-flash-attn`, with the `flash-attn` feature on a CUDA device in
//! bf16 or f16), and the backward recomputes the softmax one tile of query rows at a time
//! from q, k and v (the recomputation flash attention's own backward does, with cuBLAS
//! products instead of one kernel: candle-flash-attn has no backward). Without the kernel (the
//! CPU, f32, or a build without the feature) the forward runs by the same query tiles, which is
//! how `tests/model.rs` checks both directions against the composed attention.
//!
//! Padding: keys that are padding are masked; query rows that are padding give 0 (flash
//! attention's variable-length convention: they are not computed), and get no gradient. The
//! kernel takes right-padded batches (every sequence's tokens first) by packing their tokens;
//! other padding runs the tiled forward.
//
// B = batch, T = seq len, nh = query heads, nkv = key/value heads, hd = head dim, Tq = rows of a tile

use candle_core::{DType, Result, Tensor, D};

use super::precomputed::ternary;
use crate::model::attention::repeat_kv;

/// The score rows of one tile take at most this many bytes (f32), whatever B, nh and T.
const TILE_BYTES: usize = 256 << 20;

/// Which sequence positions are tokens.
#[derive(Debug, Clone)]
pub struct Padding {
    /// 1 for a token, 0 for padding, f32 (B, T), on the model's device.
    pub keep: Tensor,
    /// Each sequence's number of tokens when they all come first (right padding), else `None`.
    pub lengths: Option<Vec<usize>>,
}

impl Padding {
    /// The padding of `keep` (B, T) f32, 1 for tokens and 0 for padding, whose values `host`
    /// (row-major, `None` where nobody read them) tell the right-padded lengths.
    pub fn new(keep: Tensor, host: Option<&[f32]>) -> Result<Self> {
        let t = keep.dim(1)?.max(1);
        let lengths = host.and_then(|values| {
            values
                .chunks(t)
                .map(|row| {
                    let n = row.iter().take_while(|&&k| k != 0.0).count();
                    row[n..].iter().all(|&k| k == 0.0).then_some(n)
                })
                .collect()
        });
        Ok(Self { keep, lengths })
    }
}

/// What the attention computes besides its inputs.
#[derive(Debug, Clone)]
pub struct FlashSpec {
    /// Whether queries see only keys at or before their position.
    pub causal: bool,
    /// The mask's additive bias, (B or 1, 1, T or 1, T) as [`crate::model::mask::attention_bias`]
    /// gives it; each tile adds its rows.
    pub bias: Option<Tensor>,
    /// Padding, if the batch has any.
    pub padding: Option<Padding>,
    /// Query rows per tile of the tiled passes (`None`: as many as 256 MiB of f32 scores allow).
    pub tile_rows: Option<usize>,
}

/// `ENCODERLAB_FLASH=0` turns the kernel off in a build that has it: the same binary then runs
/// the composed attention, to compare the two on one GPU.
pub const FLASH_ENV: &str = "ENCODERLAB_FLASH";

/// Whether flash attention's kernel runs for queries `q` with heads of `head_dim`: the
/// `flash-attn` feature, not turned off by [`FLASH_ENV`], a CUDA device, bf16 or f16, a head
/// dimension the kernels exist for.
pub fn kernel_available(q: &Tensor, head_dim: usize) -> bool {
    kernel_built()
        && q.device().is_cuda()
        && matches!(q.dtype(), DType::BF16 | DType::F16)
        && head_dim.is_multiple_of(8)
        && head_dim <= 256
}

/// The `flash-attn` feature, not turned off by [`FLASH_ENV`].
fn kernel_built() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    cfg!(feature = "flash-attn") && *ON.get_or_init(|| std::env::var(FLASH_ENV).map_or(true, |v| v != "0"))
}

/// What a GPU's bf16 attention runs in this process, for benchmarks to print beside figures.
pub fn gpu_attention() -> &'static str {
    match kernel_built() {
        true => "attention: flash forward, tiled backward",
        false => "attention: composed ops",
    }
}

/// Attention over q (B, T, nh, hd) and k, v (B, T, nkv, hd), rotary embeddings already applied,
/// → (B, T, nh, hd) (differentiable): softmax(q·kᵀ/√hd + masks)·v, each key/value head serving
/// nh/nkv adjacent query heads.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, spec: &FlashSpec) -> Result<Tensor> {
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let (b, t, nh, hd) = q.dims4()?;
    let nkv = k.dim(2)?;
    if nkv == 0 || nh % nkv != 0 || k.dims4()? != (b, t, nkv, hd) || v.dims() != k.dims() {
        candle_core::bail!(
            "flash attention: q {:?}, k {:?} and v {:?} do not fit (B, T, heads, hd) with the query heads a multiple of the key/value heads",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    let tile = spec.tile_rows.unwrap_or_else(|| tile_rows(b, nh, t)).clamp(1, t.max(1));
    let out = match kernel_forward(&q, &k, &v, spec)? {
        Some(y) => y,
        None => swap(&tiled_forward(&heads_first(&q, &k, &v)?, spec, tile)?)?,
    };
    let spec = spec.clone();
    let backward = move |q: &Tensor, k: &Tensor, v: &Tensor, grad: &Tensor| {
        let dy = swap(&grad.detach())?;
        let [dq, dk, dv] = tiled_backward(&heads_first(q, k, v)?, &dy, &spec, tile)?;
        let dtype = q.dtype();
        Ok((
            Some(swap(&dq)?.to_dtype(dtype)?),
            Some(swap(&dk)?.to_dtype(dtype)?),
            Some(swap(&dv)?.to_dtype(dtype)?),
        ))
    };
    ternary("flash-attention", [&q, &k, &v], out, Box::new(backward))
}

/// The most query rows whose f32 scores over all T keys, for every sequence and head, fit in
/// [`TILE_BYTES`] (a multiple of 64 where it can be).
fn tile_rows(b: usize, nh: usize, t: usize) -> usize {
    let rows = TILE_BYTES / (b * nh * t * 4).max(1);
    if rows >= 64 {
        rows / 64 * 64
    } else {
        rows.max(1)
    }
}

/// q, k and v (B, nh, T, hd) with each key/value head repeated for its query heads.
struct Heads {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    /// Query heads per key/value head.
    group: usize,
}

/// (B, T, h, hd) ↔ (B, h, T, hd), contiguous.
fn swap(x: &Tensor) -> Result<Tensor> {
    x.transpose(1, 2)?.contiguous()
}

/// Detached: the tiled passes compute values, not a graph.
fn heads_first(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Heads> {
    let group = q.dim(2)? / k.dim(2)?;
    Ok(Heads {
        q: swap(&q.detach())?,
        k: repeat_kv(swap(&k.detach())?, group)?,
        v: repeat_kv(swap(&v.detach())?, group)?,
        group,
    })
}

/// The tiles' query rows and the keys they may see (all, or up to their last row if causal).
fn tiles(t: usize, tile: usize, causal: bool) -> impl Iterator<Item = (std::ops::Range<usize>, usize)> {
    (0..t).step_by(tile).map(move |s| {
        let e = (s + tile).min(t);
        (s..e, if causal { e } else { t })
    })
}

/// The softmax weights of query rows `rows` over keys `0..keys`, f32 (B, nh, Tq, keys).
fn tile_weights(h: &Heads, rows: &std::ops::Range<usize>, keys: usize, spec: &FlashSpec) -> Result<Tensor> {
    let hd = h.q.dim(D::Minus1)?;
    let q = h.q.narrow(2, rows.start, rows.len())?;
    let k = h.k.narrow(2, 0, keys)?;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?;
    if let Some(bias) = &spec.bias {
        // its query rows: the tile's, or one row for all (padding alone)
        let bias = match bias.dim(2)? {
            1 => bias.clone(),
            _ => bias.narrow(2, rows.start, rows.len())?,
        };
        scores = scores.broadcast_add(&bias.narrow(3, 0, keys)?)?;
    }
    candle_nn::ops::softmax_last_dim(&scores)
}

/// (B, T) keep → (B, 1, T, 1) in `dtype`, to zero padded query rows.
fn row_keep(spec: &FlashSpec, dtype: DType) -> Result<Option<Tensor>> {
    spec.padding
        .as_ref()
        .map(|p| p.keep.unsqueeze(1)?.unsqueeze(3)?.to_dtype(dtype))
        .transpose()
}

/// The forward one tile of query rows at a time → (B, nh, T, hd).
fn tiled_forward(h: &Heads, spec: &FlashSpec, tile: usize) -> Result<Tensor> {
    let t = h.q.dim(2)?;
    let mut parts = Vec::new();
    for (rows, keys) in tiles(t, tile, spec.causal) {
        let p = tile_weights(h, &rows, keys, spec)?.to_dtype(h.v.dtype())?;
        parts.push(p.matmul(&h.v.narrow(2, 0, keys)?)?);
    }
    let y = Tensor::cat(&parts, 2)?;
    match row_keep(spec, y.dtype())? {
        Some(keep) => y.broadcast_mul(&keep),
        None => Ok(y),
    }
}

/// The gradients of q (B, nh, T, hd), k and v (B, nkv, T, hd), f32, given the output's
/// gradient `dy` (B, nh, T, hd), one tile of query rows at a time: with P the tile's softmax
/// weights, dV += Pᵀ·dY, dP = dY·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √hd, dQ = dS·K,
/// dK += dSᵀ·Q.
fn tiled_backward(h: &Heads, dy: &Tensor, spec: &FlashSpec, tile: usize) -> Result<[Tensor; 3]> {
    let dtype = h.q.dtype();
    let (b, nh, t, hd) = h.q.dims4()?;
    let scale = 1.0 / (hd as f64).sqrt();
    let dy = match row_keep(spec, dy.dtype())? {
        Some(keep) => dy.broadcast_mul(&keep)?,
        None => dy.clone(),
    }
    .to_dtype(dtype)?;
    let mut dq = Vec::new();
    let mut dk = Tensor::zeros((b, nh, t, hd), DType::F32, h.q.device())?;
    let mut dv = dk.clone();
    for (rows, keys) in tiles(t, tile, spec.causal) {
        let p = tile_weights(h, &rows, keys, spec)?; // (B, nh, Tq, keys) f32
        let dy_i = dy.narrow(2, rows.start, rows.len())?;
        let (k, v) = (h.k.narrow(2, 0, keys)?, h.v.narrow(2, 0, keys)?);
        let dv_i = p.to_dtype(dtype)?.t()?.matmul(&dy_i)?.to_dtype(DType::F32)?;
        let dp = dy_i.matmul(&v.t()?)?.to_dtype(DType::F32)?;
        let row = (&p * &dp)?.sum_keepdim(D::Minus1)?;
        let ds = ((p * dp.broadcast_sub(&row)?)? * scale)?.to_dtype(dtype)?;
        dq.push(ds.matmul(&k)?.to_dtype(DType::F32)?);
        let q_i = h.q.narrow(2, rows.start, rows.len())?;
        let dk_i = ds.t()?.matmul(&q_i)?.to_dtype(DType::F32)?;
        let rest = t - keys;
        dk = (dk + dk_i.pad_with_zeros(2, 0, rest)?)?;
        dv = (dv + dv_i.pad_with_zeros(2, 0, rest)?)?;
    }
    // each key/value head's gradient is the sum over its group of query heads
    let fold = |x: Tensor| -> Result<Tensor> {
        match h.group {
            1 => Ok(x),
            g => x.reshape((b, nh / g, g, t, hd))?.sum(2),
        }
    };
    Ok([Tensor::cat(&dq, 2)?, fold(dk)?, fold(dv)?])
}

/// Flash attention's kernel where it runs ([`kernel_available`]): (B, T, nh, hd), or `None`.
#[cfg(feature = "flash-attn")]
fn kernel_forward(q: &Tensor, k: &Tensor, v: &Tensor, spec: &FlashSpec) -> Result<Option<Tensor>> {
    let (b, t, nh, hd) = q.dims4()?;
    if !kernel_available(q, hd) {
        return Ok(None);
    }
    let scale = (1.0 / (hd as f64).sqrt()) as f32;
    let (q, k, v) = (q.detach(), k.detach(), v.detach());
    let Some(padding) = &spec.padding else {
        return Ok(Some(candle_flash_attn::flash_attn(&q, &k, &v, scale, spec.causal)?));
    };
    // right padding: the tokens of all sequences packed one after another, the kernel's
    // variable-length form, then put back in their rows (padded rows 0)
    let Some(lengths) = padding.lengths.as_ref().filter(|l| l.iter().all(|&n| n > 0)) else {
        return Ok(None);
    };
    let rows: Vec<u32> = lengths
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| (0..n).map(move |j| (i * t + j) as u32))
        .collect();
    let mut cumulative = vec![0u32];
    for &n in lengths {
        cumulative.push(cumulative.last().copied().unwrap_or(0) + n as u32);
    }
    let device = q.device();
    let (n, batch) = (rows.len(), cumulative.len());
    let rows = Tensor::from_vec(rows, n, device)?;
    let seqlens = Tensor::from_vec(cumulative, batch, device)?;
    let pack = |x: &Tensor| x.reshape((b * t, x.dim(2)?, hd))?.index_select(&rows, 0);
    let longest = lengths.iter().copied().max().unwrap_or(0);
    let y = candle_flash_attn::flash_attn_varlen(
        &pack(&q)?,
        &pack(&k)?,
        &pack(&v)?,
        &seqlens,
        &seqlens,
        longest,
        longest,
        scale,
        spec.causal,
    )?;
    let whole = Tensor::zeros((b * t, nh, hd), y.dtype(), device)?.index_add(&rows, &y, 0)?;
    Ok(Some(whole.reshape((b, t, nh, hd))?))
}

#[cfg(not(feature = "flash-attn"))]
fn kernel_forward(_: &Tensor, _: &Tensor, _: &Tensor, _: &FlashSpec) -> Result<Option<Tensor>> {
    Ok(None)
}
