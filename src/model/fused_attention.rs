//! Fused CPU attention with its backward: rotary embeddings, scaled scores, the causal and
//! padding masks, softmax and the value product in one op per (sequence, head), reading the
//! projections where they lie (B, T, heads·hd) and writing the output in the layout `o_proj`
//! takes. Composed from candle ops, the same function costs a transposed copy of q, k and v,
//! a repeated copy of k and v per GQA group, three passes over every (T, T) score matrix and
//! batched matmuls that run one small product at a time; here each (sequence, head) is one
//! rayon task calling the single-threaded `gemm` kernel candle itself uses.
//!
//! The backward recomputes the attention weights from q and k (as FlashAttention does) rather
//! than keeping B·heads·T² floats per layer alive between forward and backward; it runs one
//! task per (sequence, key/value head) so that the gradients of a group's keys and values are
//! summed without sharing. `tests/model.rs` compares both directions with the composed path.
// B = batch, T = seq len, nh = query heads, nkv = key/value heads, hd = head dim

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::cpu::{contiguous_f32, split_flat};
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

/// Attention over projections `q` (B, T, nh·hd), `k` and `v` (B, T, nkv·hd), contiguous f32 on
/// the CPU, → (B, T, nh·hd) (differentiable).
pub fn fused_attention(q: &Tensor, k: &Tensor, v: &Tensor, spec: &AttentionSpec) -> Result<Tensor> {
    q.apply_op3(k, v, FusedAttention(spec.clone()))
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
/// positions (`sign` −1: the inverse rotation) and scaled.
fn rotated(x: &[f32], offset: usize, stride: usize, t: usize, tables: &RopeTables, sign: f32, scale: f32) -> Vec<f32> {
    let d = tables.head_dim();
    let half = d / 2;
    let (cos, sin) = tables.cos_sin();
    let mut out = vec![0f32; t * d];
    vmath::wide(
        #[inline(always)]
        || {
            for p in 0..t {
                let xr = &x[offset + p * stride..][..d];
                let (c, s) = (&cos[p * d..][..d], &sin[p * d..][..d]);
                let or = &mut out[p * d..][..d];
                let (lo, hi) = or.split_at_mut(half);
                let (x_lo, x_hi) = xr.split_at(half);
                for j in 0..half {
                    lo[j] = scale * (x_lo[j] * c[j] - sign * x_hi[j] * s[j]);
                    hi[j] = scale * (x_hi[j] * c[j + half] + sign * x_lo[j] * s[j + half]);
                }
            }
        },
    );
    out
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

/// Scores (T × T) → attention weights in place: key bias added, keys after the query dropped
/// when causal, softmax over each row.
fn softmax_rows(s: &mut [f32], t: usize, causal: bool, key_bias: Option<&[f32]>) {
    for (i, row) in s.chunks_mut(t).enumerate() {
        let valid = if causal { i + 1 } else { t };
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

impl AttentionSpec {
    /// (B, T) of `q` after checking the three shapes against the spec.
    fn check(&self, q: &Layout, k: &Layout, v: &Layout) -> Result<(usize, usize)> {
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
        if !self.heads.is_multiple_of(self.kv_heads) || t * self.head_dim > self.tables.cos_sin().0.len() {
            candle_core::bail!("fused attention: {t} positions or the head counts do not fit the spec");
        }
        if self.key_bias.as_ref().is_some_and(|kb| kb.len() != b * t) {
            candle_core::bail!("fused attention: the padding bias does not have B·T = {} values", b * t);
        }
        Ok((b, t))
    }

    fn key_bias(&self, b: usize, t: usize) -> Option<&[f32]> {
        self.key_bias.as_deref().map(|kb| &kb[b * t..(b + 1) * t])
    }
}

struct FusedAttention(AttentionSpec);

impl CustomOp3 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let spec = &self.0;
        let (batch, t) = spec.check(l1, l2, l3)?;
        let (q, k, v) = (
            contiguous_f32(s1, l1, self.name())?,
            contiguous_f32(s2, l2, self.name())?,
            contiguous_f32(s3, l3, self.name())?,
        );
        let (nh, nkv, d) = (spec.heads, spec.kv_heads, spec.head_dim);
        let (q_stride, kv_stride, group) = (nh * d, nkv * d, nh / nkv);
        let scale = 1.0 / (d as f32).sqrt();
        let mut y = vec![0f32; q.len()];
        let out = Out(y.as_mut_ptr());
        (0..batch * nh).into_par_iter().for_each(|task| {
            let (b, h) = (task / nh, task % nh);
            let g = h / group;
            let qr = rotated(q, b * t * q_stride + h * d, q_stride, t, &spec.tables, 1.0, scale);
            let kr = rotated(k, b * t * kv_stride + g * d, kv_stride, t, &spec.tables, 1.0, 1.0);
            let mut s = vec![0f32; t * t];
            // SAFETY: all operands lie inside their buffers (shapes checked above); this task
            // alone writes y's rows of head h of sequence b.
            unsafe {
                let kt = Mat::new(&kr, 0, 1, d);
                matmul(t, t, d, s.as_mut_ptr(), t, false, Mat::rows(&qr, 0, d), kt, 1.0);
                softmax_rows(&mut s, t, spec.causal, spec.key_bias(b, t));
                let vh = Mat::rows(v, b * t * kv_stride + g * d, kv_stride);
                let dst = out.at(b * t * q_stride + h * d);
                matmul(t, d, t, dst, q_stride, false, Mat::rows(&s, 0, t), vh, 1.0);
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad_op = FusedAttentionGrad {
            spec: self.0.clone(),
            grad: grad.contiguous()?,
        };
        let all = q.apply_op3_no_bwd(k, v, &grad_op)?;
        let mut grads = split_flat(&all, &[q, k, v])?.into_iter();
        Ok((grads.next(), grads.next(), grads.next()))
    }
}

/// The gradients of q, k and v given the output's, concatenated flat.
struct FusedAttentionGrad {
    spec: AttentionSpec,
    grad: Tensor,
}

impl CustomOp3 for FusedAttentionGrad {
    fn name(&self) -> &'static str {
        "fused-attention-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let spec = &self.spec;
        let (batch, t) = spec.check(l1, l2, l3)?;
        let (q, k, v) = (
            contiguous_f32(s1, l1, self.name())?,
            contiguous_f32(s2, l2, self.name())?,
            contiguous_f32(s3, l3, self.name())?,
        );
        let (storage, gl) = self.grad.storage_and_layout();
        let dy = match &*storage {
            Storage::Cpu(s) => contiguous_f32(s, gl, self.name())?,
            _ => candle_core::bail!("fused attention: the output gradient must be on the CPU"),
        };
        let (nh, nkv, d) = (spec.heads, spec.kv_heads, spec.head_dim);
        let (q_stride, kv_stride, group) = (nh * d, nkv * d, nh / nkv);
        let scale = 1.0 / (d as f32).sqrt();
        // [dq | dk | dv]
        let mut all = vec![0f32; q.len() + 2 * k.len()];
        let (dq, dk, dv) = {
            let (dq, rest) = all.split_at_mut(q.len());
            let (dk, dv) = rest.split_at_mut(k.len());
            (Out(dq.as_mut_ptr()), Out(dk.as_mut_ptr()), Out(dv.as_mut_ptr()))
        };
        (0..batch * nkv).into_par_iter().for_each(|task| {
            let (b, g) = (task / nkv, task % nkv);
            let kv_at = b * t * kv_stride + g * d;
            let kr = rotated(k, kv_at, kv_stride, t, &spec.tables, 1.0, 1.0);
            let vh = Mat::rows(v, kv_at, kv_stride);
            let (mut dkr, mut dvh) = (vec![0f32; t * d], vec![0f32; t * d]);
            let (mut p, mut ds, mut dqr) = (vec![0f32; t * t], vec![0f32; t * t], vec![0f32; t * d]);
            for (n, h) in (g * group..(g + 1) * group).enumerate() {
                let q_at = b * t * q_stride + h * d;
                let qr = rotated(q, q_at, q_stride, t, &spec.tables, 1.0, scale);
                let dyh = Mat::rows(dy, q_at, q_stride);
                // SAFETY: operands lie inside their buffers (shapes checked above); this task
                // alone writes the rows of kv head g of sequence b (dk, dv) and of its query
                // heads (dq).
                unsafe {
                    // P = softmax(scale·q_rot k_rotᵀ + bias), recomputed
                    matmul(
                        t,
                        t,
                        d,
                        p.as_mut_ptr(),
                        t,
                        false,
                        Mat::rows(&qr, 0, d),
                        Mat::new(&kr, 0, 1, d),
                        1.0,
                    );
                    softmax_rows(&mut p, t, spec.causal, spec.key_bias(b, t));
                    // dV += Pᵀ dY;  dP = dY Vᵀ
                    matmul(t, d, t, dvh.as_mut_ptr(), d, n > 0, Mat::new(&p, 0, 1, t), dyh, 1.0);
                    let vt = Mat {
                        rs: 1,
                        cs: kv_stride,
                        ..vh
                    };
                    matmul(t, t, d, ds.as_mut_ptr(), t, false, dyh, vt, 1.0);
                }
                // dS = P ⊙ (dP − Σ_j P dP)
                for (pr, dr) in p.chunks(t).zip(ds.chunks_mut(t)) {
                    let dot: f32 = pr.iter().zip(dr.iter()).map(|(a, b)| a * b).sum();
                    dr.iter_mut().zip(pr).for_each(|(g, p)| *g = p * (*g - dot));
                }
                unsafe {
                    // dq_rot = scale · dS k_rot;  dk_rot += dSᵀ (scale · q_rot)
                    matmul(
                        t,
                        d,
                        t,
                        dqr.as_mut_ptr(),
                        d,
                        false,
                        Mat::rows(&ds, 0, t),
                        Mat::rows(&kr, 0, d),
                        scale,
                    );
                    matmul(
                        t,
                        d,
                        t,
                        dkr.as_mut_ptr(),
                        d,
                        n > 0,
                        Mat::new(&ds, 0, 1, t),
                        Mat::rows(&qr, 0, d),
                        1.0,
                    );
                    let dqh = rotated(&dqr, 0, d, t, &spec.tables, -1.0, 1.0);
                    scatter(&dqh, dq, q_at, q_stride, d);
                }
            }
            let dkh = rotated(&dkr, 0, d, t, &spec.tables, -1.0, 1.0);
            // SAFETY: as above.
            unsafe {
                scatter(&dkh, dk, kv_at, kv_stride, d);
                scatter(&dvh, dv, kv_at, kv_stride, d);
            }
        });
        let n = all.len();
        Ok((CpuStorage::F32(all), Shape::from(n)))
    }
}
