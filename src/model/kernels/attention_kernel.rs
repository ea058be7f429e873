//! The CPU attention kernel behind `fused_attention.rs`: rotary embeddings, scaled scores, the
//! causal and padding masks, softmax and the value product per (sequence, key/value group),
//! and the backward that recomputes the weights from q and k (as FlashAttention does) rather
//! than keeping B·heads·T² floats per layer alive between forward and backward. One rayon
//! task per (sequence, key/value head), each calling the single-threaded `gemm` kernel candle
//! itself uses on buffers the thread keeps; causal attention runs in blocks of 64 query rows
//! that skip the scores of later keys.
// B = batch, T = seq len, nh = query heads, nkv = key/value heads, hd = head dim

use std::sync::Arc;

use candle_core::Layout;
use candle_core::Result;
use rayon::prelude::*;

use super::fused::RopeTables;
use super::vmath;

/// What the op needs besides q, k and v.
#[derive(Debug, Clone)]
pub struct AttentionSpec {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// Queries see only keys at or before their position.
    pub causal: bool,
    /// Additive bias per (sequence, key) for padding: 0 or `MASKED`, B·T values.
    pub key_bias: Option<Arc<Vec<f32>>>,
    /// Rotary tables of the model.
    pub tables: RopeTables,
}

impl AttentionSpec {
    /// (B, T) of `q` after checking the three shapes against the spec.
    pub(super) fn check(&self, q: &Layout, k: &Layout, v: &Layout) -> Result<(usize, usize)> {
        let (b, t, w) = q.shape().dims3()?;
        let kv = (b, t, self.kv_heads * self.head_dim);
        if w != self.heads * self.head_dim || k.shape().dims3()? != kv || v.shape().dims3()? != kv {
            candle_core::bail!(
                "fused attention: q {:?}, k {:?}, v {:?} do not fit the heads",
                q.dims(),
                k.dims(),
                v.dims()
            );
        }
        self.check_positions(b, t)?;
        Ok((b, t))
    }

    /// Checks `batch` sequences of `t` positions against the head counts, the rotary tables
    /// and the padding bias.
    pub(super) fn check_positions(&self, batch: usize, t: usize) -> Result<()> {
        if self.kv_heads == 0
            || !self.heads.is_multiple_of(self.kv_heads)
            || t * self.head_dim > self.tables.cos_sin().0.len()
            || self.tables.head_dim() != self.head_dim
        {
            candle_core::bail!("fused attention: {t} positions or the head counts do not fit the spec");
        }
        if self.key_bias.as_ref().is_some_and(|kb| kb.len() != batch * t) {
            candle_core::bail!(
                "fused attention: the padding bias does not have B·T = {} values",
                batch * t
            );
        }
        Ok(())
    }

    pub(super) fn key_bias(&self, b: usize, t: usize) -> Option<&[f32]> {
        self.key_bias.as_deref().map(|kb| &kb[b * t..(b + 1) * t])
    }
}

/// A raw pointer to an output that tasks write at disjoint positions.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every task writes a set of positions no other task writes (one head of one sequence),
// and the buffer outlives the parallel loop.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The element `offset` places on (a method, so that closures capture the whole `Out`).
    ///
    /// # Safety
    /// `offset` must lie inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

/// A strided matrix operand: element (r, c) at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: usize,
    cs: usize,
}

impl Mat {
    fn rows(data: &[f32], offset: usize, rs: usize) -> Self {
        Self::new(data, offset, rs, 1)
    }

    fn new(data: &[f32], offset: usize, rs: usize, cs: usize) -> Self {
        Self {
            ptr: data[offset..].as_ptr(),
            rs,
            cs,
        }
    }
}

/// dst (m×n, row stride `dst_rs`) = [dst +] `scale`·lhs (m×k)·rhs (k×n), single-threaded.
///
/// # Safety
/// Every element the strides address must lie inside the buffers they point into, and no other
/// thread may touch dst's elements meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    add: bool,
    lhs: Mat,
    rhs: Mat,
    scale: f32,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        add,
        lhs.ptr,
        lhs.cs as isize,
        lhs.rs as isize,
        rhs.ptr,
        rhs.cs as isize,
        rhs.rs as isize,
        1.0,
        scale,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// One head's rows (T × hd), read with row stride `stride` from `offset`, rotated to their
/// positions (`sign` −1: the inverse rotation), scaled and written to `out` (T × hd).
#[allow(clippy::too_many_arguments)]
fn rotate_into(
    out: &mut [f32],
    x: &[f32],
    offset: usize,
    stride: usize,
    t: usize,
    tables: &RopeTables,
    sign: f32,
    scale: f32,
) {
    let d = tables.head_dim();
    let (cos, sin) = tables.cos_sin();
    vmath::wide(
        #[inline(always)]
        || {
            for p in 0..t {
                let row = &x[offset + p * stride..][..d];
                let (c, s) = (&cos[p * d..][..d], &sin[p * d..][..d]);
                vmath::rotate_half(&mut out[p * d..][..d], row, c, s, sign, scale);
            }
        },
    );
}

/// Writes `rows` (T × hd) to `dst` at `offset` with row stride `stride`.
///
/// # Safety
/// As for [`matmul`]'s dst.
unsafe fn scatter(rows: &[f32], dst: Out, offset: usize, stride: usize, d: usize) {
    for (p, row) in rows.chunks(d).enumerate() {
        std::ptr::copy_nonoverlapping(row.as_ptr(), dst.at(offset + p * stride), d);
    }
}

/// Query rows `r0..r1` against keys `0..keys`: causal attention in row blocks skips the scores
/// of keys after a block's last query (all zero weights); bidirectional is one block.
#[derive(Clone, Copy)]
struct Block {
    r0: usize,
    r1: usize,
    keys: usize,
}

/// Rows per causal block: a multiple of the `gemm` microkernel's 64 rows (AVX-512).
const CAUSAL_BLOCK: usize = 64;

/// The blocks of `t` queries, last first (the last block sees every key, so the sums over
/// blocks start with a product that writes every row).
fn blocks(t: usize, causal: bool) -> Vec<Block> {
    if !causal {
        return vec![Block { r0: 0, r1: t, keys: t }];
    }
    let mut out: Vec<Block> = (0..t)
        .step_by(CAUSAL_BLOCK)
        .map(|r0| {
            let r1 = (r0 + CAUSAL_BLOCK).min(t);
            Block { r0, r1, keys: r1 }
        })
        .collect();
    out.reverse();
    out
}

/// A block's scores ((r1 − r0) × keys, row-major) → attention weights in place: key bias added,
/// keys after the query dropped when causal, softmax over each row.
fn softmax_rows(s: &mut [f32], block: Block, causal: bool, key_bias: Option<&[f32]>) {
    for (i, row) in s.chunks_mut(block.keys).enumerate() {
        let valid = if causal { block.r0 + i + 1 } else { block.keys };
        let (seen, unseen) = row.split_at_mut(valid);
        if let Some(kb) = key_bias {
            vmath::wide(
                #[inline(always)]
                || seen.iter_mut().zip(kb).for_each(|(v, b)| *v += b),
            );
        }
        vmath::softmax_in_place(seen);
        unseen.fill(0.0);
    }
}

/// A block's attention weights into `p` ((r1 − r0) × keys): softmax(q_rot k_rotᵀ + bias) of
/// its query rows (`qr`, T × hd, already scaled) against the rotated keys (`kr`).
///
/// # Safety
/// `qr` holds at least r1 rows of `d`, `kr` at least `keys` rows, `p` (r1 − r0)·keys values.
unsafe fn weights(p: &mut [f32], qr: &[f32], kr: &[f32], bl: Block, d: usize, causal: bool, key_bias: Option<&[f32]>) {
    let (m, keys) = (bl.r1 - bl.r0, bl.keys);
    let kt = Mat::new(kr, 0, 1, d);
    matmul(
        m,
        keys,
        d,
        p.as_mut_ptr(),
        keys,
        false,
        Mat::rows(qr, bl.r0 * d, d),
        kt,
        1.0,
    );
    softmax_rows(p, bl, causal, key_bias);
}

/// dS = P ⊙ (dP − Σ_j P dP), row by row, in place of dP.
fn softmax_grad(p: &[f32], dp: &mut [f32], keys: usize) {
    vmath::wide(
        #[inline(always)]
        || {
            for (pr, dr) in p.chunks(keys).zip(dp.chunks_mut(keys)) {
                let dot = vmath::dot(pr, dr);
                dr.iter_mut().zip(pr).for_each(|(g, p)| *g = p * (*g - dot));
            }
        },
    );
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on `n` floats this thread keeps between calls: no allocation and no zeroing per
/// task. They hold what the last call left, so `f` writes every value before reading it.
fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < n {
                buf.resize(n, 0.0);
            }
            f(&mut buf[..n])
        }
        // re-entered on this thread (a task run while another waits): a buffer of its own
        Err(_) => f(&mut vec![0f32; n]),
    })
}

/// Splits `buf` into pieces of the given lengths.
fn pieces<const N: usize>(mut buf: &mut [f32], lens: [usize; N]) -> [&mut [f32]; N] {
    lens.map(|n| {
        let (head, rest) = std::mem::take(&mut buf).split_at_mut(n);
        buf = rest;
        head
    })
}

/// A buffer of `n` floats not yet written, and the pointer tasks write it through.
///
/// # Safety
/// The caller writes all `n` values through the pointer before [`written`].
unsafe fn unwritten(n: usize) -> (Vec<f32>, Out) {
    let mut v: Vec<f32> = Vec::with_capacity(n);
    let out = Out(v.as_mut_ptr());
    (v, out)
}

/// The buffer of [`unwritten`], its `n` values written.
///
/// # Safety
/// Every one of the `n` values has been written.
unsafe fn written(mut v: Vec<f32>, n: usize) -> Vec<f32> {
    v.set_len(n);
    v
}

/// Where one kind of head lies in a buffer of rows: head h of position p of sequence b starts
/// at `start` + (b·T + p)·`stride` + `col` + h·hd. q, k and v may lie in three buffers, one
/// after another in one (the gradients of the op), or side by side in each row of one (the
/// block's stacked projection).
#[derive(Clone, Copy)]
pub(super) struct Heads {
    /// Where the first row starts in the buffer.
    pub start: usize,
    /// Where the first head starts in a row.
    pub col: usize,
    /// The length of a row.
    pub stride: usize,
}

impl Heads {
    /// Heads alone in their rows, `width` floats each.
    pub(super) fn alone(width: usize) -> Self {
        Self {
            start: 0,
            col: 0,
            stride: width,
        }
    }

    /// Where head `h` of sequence `b` (of `t` positions) starts, for heads of width `d`.
    fn at(self, b: usize, t: usize, h: usize, d: usize) -> usize {
        self.start + b * t * self.stride + self.col + h * d
    }

    /// Whether `batch` sequences of `t` rows with `heads` heads of width `d` fit in `len` values.
    fn fits(self, len: usize, batch: usize, t: usize, heads: usize, d: usize) -> bool {
        batch * t == 0 || (self.col + heads * d <= self.stride && self.start + batch * t * self.stride <= len)
    }
}

/// The projections attention reads, with where their heads lie.
pub(super) struct Projections<'a> {
    pub q: (&'a [f32], Heads),
    pub k: (&'a [f32], Heads),
    pub v: (&'a [f32], Heads),
}

impl Projections<'_> {
    fn check(&self, spec: &AttentionSpec, batch: usize, t: usize) -> Result<()> {
        let d = spec.head_dim;
        let ((q, qh), (k, kh), (v, vh)) = (self.q, self.k, self.v);
        if !qh.fits(q.len(), batch, t, spec.heads, d)
            || !kh.fits(k.len(), batch, t, spec.kv_heads, d)
            || !vh.fits(v.len(), batch, t, spec.kv_heads, d)
        {
            candle_core::bail!("fused attention: a projection is smaller than {batch} × {t} rows of its heads");
        }
        spec.check_positions(batch, t)
    }
}

/// The attention output of `batch` sequences of `t` positions: B·T rows of nh·hd.
pub(super) fn attend(spec: &AttentionSpec, batch: usize, t: usize, x: &Projections) -> Result<Vec<f32>> {
    x.check(spec, batch, t)?;
    let (nh, nkv, d) = (spec.heads, spec.kv_heads, spec.head_dim);
    let ((q, qh), (k, kh), (v, vh)) = (x.q, x.k, x.v);
    let (group, y_stride) = (nh / nkv, nh * d);
    let scale = 1.0 / (d as f32).sqrt();
    let n = batch * t * y_stride;
    let blocks = blocks(t, spec.causal);
    // SAFETY: the tasks below write every row of every head of every sequence (each block
    // writes its rows, and the blocks cover 0..t).
    let (y, out) = unsafe { unwritten(n) };
    (0..batch * nkv).into_par_iter().for_each(|task| {
        let (b, g) = (task / nkv, task % nkv);
        let (k_at, v_at) = (kh.at(b, t, g, d), vh.at(b, t, g, d));
        with_scratch(2 * t * d + t * t, |buf| {
            let [kr, qr, s] = pieces(buf, [t * d, t * d, t * t]);
            rotate_into(kr, k, k_at, kh.stride, t, &spec.tables, 1.0, 1.0);
            for h in g * group..(g + 1) * group {
                let y_at = b * t * y_stride + h * d;
                rotate_into(qr, q, qh.at(b, t, h, d), qh.stride, t, &spec.tables, 1.0, scale);
                for &bl in &blocks {
                    let (m, keys) = (bl.r1 - bl.r0, bl.keys);
                    let s = &mut s[..m * keys];
                    // SAFETY: all operands lie inside their buffers (checked above); this task
                    // alone writes y's rows of the heads of group g of sequence b.
                    unsafe {
                        weights(s, qr, kr, bl, d, spec.causal, spec.key_bias(b, t));
                        let vm = Mat::rows(v, v_at, vh.stride);
                        let dst = out.at(y_at + bl.r0 * y_stride);
                        matmul(m, d, keys, dst, y_stride, false, Mat::rows(s, 0, keys), vm, 1.0);
                    }
                }
            }
        })
    });
    // SAFETY: written above.
    Ok(unsafe { written(y, n) })
}

/// Where the gradients of q, k and v go: a buffer of `len` values, and the heads of each in
/// it; the three must not overlap (so that, of the right total size, they cover the buffer).
pub(super) struct GradsOut {
    pub len: usize,
    pub q: Heads,
    pub k: Heads,
    pub v: Heads,
}

/// The gradients of the projections given the output's `dy` (B·T rows of nh·hd), in one
/// buffer laid out as `dst` says.
pub(super) fn attend_grad(
    spec: &AttentionSpec,
    batch: usize,
    t: usize,
    x: &Projections,
    dy: &[f32],
    dst: &GradsOut,
) -> Result<Vec<f32>> {
    x.check(spec, batch, t)?;
    let (nh, nkv, d) = (spec.heads, spec.kv_heads, spec.head_dim);
    let ((q, qh), (k, kh), (v, vh)) = (x.q, x.k, x.v);
    let (group, dy_stride) = (nh / nkv, nh * d);
    let covers = |h: Heads, heads: usize| h.fits(dst.len, batch, t, heads, d);
    // every value written once: the three layouts fit and together hold exactly len values
    let whole = dst.len == batch * t * (nh + 2 * nkv) * d;
    if dy.len() != batch * t * dy_stride || !whole || !covers(dst.q, nh) || !covers(dst.k, nkv) || !covers(dst.v, nkv) {
        candle_core::bail!(
            "fused attention: the output gradient or the gradients' buffer does not fit {batch} × {t} rows"
        );
    }
    let scale = 1.0 / (d as f32).sqrt();
    let blocks = blocks(t, spec.causal);
    // SAFETY: the callers' layouts cover the buffer: the tasks below write every head of q, k
    // and v of every position of every sequence.
    let (all, base) = unsafe { unwritten(dst.len) };
    (0..batch * nkv).into_par_iter().for_each(|task| {
        let (b, g) = (task / nkv, task % nkv);
        let (k_at, v_at) = (kh.at(b, t, g, d), vh.at(b, t, g, d));
        with_scratch(6 * t * d + 2 * t * t, |buf| {
            let [kr, qr, dkr, dvh, dqr, rot, p, ds] =
                pieces(buf, [t * d, t * d, t * d, t * d, t * d, t * d, t * t, t * t]);
            rotate_into(kr, k, k_at, kh.stride, t, &spec.tables, 1.0, 1.0);
            let vm = Mat::rows(v, v_at, vh.stride);
            let mut first = true;
            for h in g * group..(g + 1) * group {
                let dy_at = b * t * dy_stride + h * d;
                rotate_into(qr, q, qh.at(b, t, h, d), qh.stride, t, &spec.tables, 1.0, scale);
                for &bl in &blocks {
                    let (m, keys) = (bl.r1 - bl.r0, bl.keys);
                    let (p, ds) = (&mut p[..m * keys], &mut ds[..m * keys]);
                    let dyh = Mat::rows(dy, dy_at + bl.r0 * dy_stride, dy_stride);
                    // the first product into dk and dv writes all their rows (the first block
                    // sees every key); the rest add
                    let add = !first;
                    first = false;
                    // SAFETY: operands lie inside their buffers (checked above); this task alone
                    // writes the rows of kv head g of sequence b (dk, dv) and of its query heads
                    // (dq).
                    unsafe {
                        // P, recomputed
                        weights(p, qr, kr, bl, d, spec.causal, spec.key_bias(b, t));
                        // dV += Pᵀ dY;  dP = dY Vᵀ
                        matmul(keys, d, m, dvh.as_mut_ptr(), d, add, Mat::new(p, 0, 1, keys), dyh, 1.0);
                        let vt = Mat {
                            rs: 1,
                            cs: vh.stride,
                            ..vm
                        };
                        matmul(m, keys, d, ds.as_mut_ptr(), keys, false, dyh, vt, 1.0);
                    }
                    softmax_grad(p, ds, keys);
                    // SAFETY: as above.
                    unsafe {
                        // dq_rot = scale · dS k_rot;  dk_rot += dSᵀ (scale · q_rot)
                        let dq_rows = dqr[bl.r0 * d..].as_mut_ptr();
                        matmul(
                            m,
                            d,
                            keys,
                            dq_rows,
                            d,
                            false,
                            Mat::rows(ds, 0, keys),
                            Mat::rows(kr, 0, d),
                            scale,
                        );
                        let q_rows = Mat::rows(qr, bl.r0 * d, d);
                        matmul(
                            keys,
                            d,
                            m,
                            dkr.as_mut_ptr(),
                            d,
                            add,
                            Mat::new(ds, 0, 1, keys),
                            q_rows,
                            1.0,
                        );
                    }
                }
                rotate_into(rot, dqr, 0, d, t, &spec.tables, -1.0, 1.0);
                // SAFETY: as above.
                unsafe { scatter(rot, base, dst.q.at(b, t, h, d), dst.q.stride, d) };
            }
            rotate_into(rot, dkr, 0, d, t, &spec.tables, -1.0, 1.0);
            // SAFETY: as above.
            unsafe {
                scatter(rot, base, dst.k.at(b, t, g, d), dst.k.stride, d);
                scatter(dvh, base, dst.v.at(b, t, g, d), dst.v.stride, d);
            }
        })
    });
    // SAFETY: written above.
    Ok(unsafe { written(all, dst.len) })
}
