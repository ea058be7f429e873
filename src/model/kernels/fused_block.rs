//! A whole pre-norm block, y = x' + mlp(norm₂(x')) with x' = x + o(attend(norm₁(x))), as one
//! CPU op with its own backward, on the kernels of the fused ops (`fused_norm.rs`,
//! `attention_kernel.rs`, `fused_mlp.rs`, `gemm.rs`).
//!
//! Composed of its fused parts, a block puts nine activations into candle's graph, and candle's
//! backward gives each of them a zeroed buffer plus an addition per gradient it receives, on one
//! thread while the other waits. Here the graph sees the input and one flat tensor of the
//! block's weights (their concatenation, whose backward hands each weight its slice), q, k and
//! v are one product with their weights stacked, as are gate and up, and the op keeps what its
//! backward needs. Other devices and dtypes take the composed ops; `tests/model.rs` compares
//! the two.
// B = batch, T = seq len, H = hidden, I = intermediate, nh/nkv = query/key-value heads,
// hd = head dim, A = nh·hd, W = (nh + 2·nkv)·hd (the stacked projection)

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::attention_kernel::{attend, attend_grad, GradsOut, Heads, Projections};
use super::cpu::{f32_inputs, with_cpu_f32};
use super::fused_attention::AttentionSpec;
use super::fused_mlp::{gate_grad_rows, gate_rows};
use super::fused_norm::{norm_grad_rows, norm_rows};
use super::gemm::{par_matmuls, Product};
use super::vmath;

/// What the op needs besides the input and the weights.
#[derive(Debug, Clone)]
pub struct BlockSpec {
    /// The attention's heads, mask and rotary tables.
    pub attention: AttentionSpec,
    /// The MLP's intermediate width.
    pub intermediate: usize,
    /// RMSNorm's ε.
    pub eps: f32,
}

/// A block's weights, in HF Llama shapes.
pub struct BlockWeights<'a> {
    /// `input_layernorm` (H).
    pub norm1: &'a Tensor,
    /// `q_proj`, `k_proj`, `v_proj`, `o_proj`.
    pub attention: [&'a Tensor; 4],
    /// `post_attention_layernorm` (H).
    pub norm2: &'a Tensor,
    /// `gate_proj`, `up_proj`, `down_proj`.
    pub mlp: [&'a Tensor; 3],
}

/// The block applied to `x` (B, T, H), contiguous f32 on the CPU (differentiable in `x` and
/// every weight).
pub fn block(x: &Tensor, w: &BlockWeights, spec: &BlockSpec) -> Result<Tensor> {
    let [q, k, v, o] = w.attention;
    let [gate, up, down] = w.mlp;
    let parts = [w.norm1, q, k, v, o, w.norm2, gate, up, down].map(|t| t.flatten_all());
    let parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
    let params = Tensor::cat(&parts, 0)?;
    x.apply_op2(
        &params,
        FusedBlock {
            spec: spec.clone(),
            kept: Mutex::new(None),
        },
    )
}

/// Where each weight lies in the flat tensor: (start, length), in [`block`]'s order.
struct Offsets {
    norm1: (usize, usize),
    qkv: (usize, usize),
    o: (usize, usize),
    norm2: (usize, usize),
    gate_up: (usize, usize),
    down: (usize, usize),
    total: usize,
}

/// The activations the backward needs.
struct Activations {
    h1: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    x2: Vec<f32>,
    h2: Vec<f32>,
    gate_up: Vec<f32>,
}

struct FusedBlock {
    spec: BlockSpec,
    kept: Mutex<Option<Arc<Activations>>>,
}

/// a + b, elementwise, on all threads.
fn added(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut out = a.to_vec();
    out.par_chunks_mut(1 << 14)
        .zip(b.par_chunks(1 << 14))
        .for_each(|(o, b)| {
            vmath::wide(
                #[inline(always)]
                || o.iter_mut().zip(b).for_each(|(o, b)| *o += b),
            )
        });
    out
}

/// lhs (m×k, row-major) · rhsᵀ where rhs is (n×k) row-major: a projection by a weight.
fn project(lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    par_matmuls(&[Product {
        m,
        n,
        k,
        lhs: (lhs, k, 1),
        rhs: (rhs, 1, k),
    }])
}

/// lhs (m×k) · rhs (k×n), both row-major: an input's gradient through a weight.
fn times(lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    par_matmuls(&[Product {
        m,
        n,
        k,
        lhs: (lhs, k, 1),
        rhs: (rhs, n, 1),
    }])
}

/// dyᵀ (m×rows) · x (rows×n) where dy is (rows×m) row-major: a weight's gradient.
fn outer(dy: &[f32], x: &[f32], rows: usize, m: usize, n: usize) -> Result<Vec<f32>> {
    par_matmuls(&[Product {
        m,
        n,
        k: rows,
        lhs: (dy, 1, m),
        rhs: (x, n, 1),
    }])
}

impl FusedBlock {
    /// (H, A, W, I) of the spec for a hidden width `h`.
    fn widths(&self, h: usize) -> (usize, usize, usize, usize) {
        let a = &self.spec.attention;
        let d = a.head_dim;
        (h, a.heads * d, (a.heads + 2 * a.kv_heads) * d, self.spec.intermediate)
    }

    fn layout(&self, h: usize) -> Offsets {
        let (h, a, w, i) = self.widths(h);
        let mut at = 0;
        let mut next = |len: usize| {
            let part = (at, len);
            at += len;
            part
        };
        let (norm1, qkv, o, norm2, gate_up, down) =
            (next(h), next(w * h), next(h * a), next(h), next(2 * i * h), next(h * i));
        Offsets {
            norm1,
            qkv,
            o,
            norm2,
            gate_up,
            down,
            total: at,
        }
    }

    /// (B, T, H) of x after checking x and the flat weights against the spec.
    fn dims(&self, x: &Layout, params: &Layout) -> Result<(usize, usize, usize)> {
        let (b, t, h) = x.shape().dims3()?;
        let total = self.layout(h).total;
        if params.shape().dims1()? != total {
            candle_core::bail!(
                "block: {} weight values for an input {:?}, {total} expected",
                params.shape().elem_count(),
                x.dims()
            );
        }
        Ok((b, t, h))
    }

    /// Where q, k and v lie in the stacked product: side by side in each row.
    fn heads(&self, h: usize) -> (Heads, Heads, Heads) {
        let (_, a, w, _) = self.widths(h);
        let kv = self.spec.attention.kv_heads * self.spec.attention.head_dim;
        let at = |col| Heads {
            start: 0,
            col,
            stride: w,
        };
        (at(0), at(a), at(a + kv))
    }

    /// The forward up to the MLP's gate/up product: the activations the backward needs.
    fn activations(&self, x: &[f32], p: &[f32], (b, t, h): (usize, usize, usize)) -> Result<Activations> {
        let (n, (_, a, w, i), l) = (b * t, self.widths(h), self.layout(h));
        let part = |(start, len): (usize, usize)| &p[start..start + len];
        let h1 = norm_rows(x, part(l.norm1), self.spec.eps);
        let qkv = project(&h1, part(l.qkv), n, h, w)?;
        let (qh, kh, vh) = self.heads(h);
        let proj = Projections {
            q: (&qkv, qh),
            k: (&qkv, kh),
            v: (&qkv, vh),
        };
        let attn = attend(&self.spec.attention, b, t, &proj)?;
        let x2 = added(x, &project(&attn, part(l.o), n, a, h)?);
        let h2 = norm_rows(&x2, part(l.norm2), self.spec.eps);
        let gate_up = project(&h2, part(l.gate_up), n, h, 2 * i)?;
        Ok(Activations {
            h1,
            qkv,
            attn,
            x2,
            h2,
            gate_up,
        })
    }
}

impl CustomOp2 for FusedBlock {
    fn name(&self) -> &'static str {
        "fused-block"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, t, h) = self.dims(l1, l2)?;
        let [x, p] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        let (i, l) = (self.spec.intermediate, self.layout(h));
        let act = self.activations(x, p, (b, t, h))?;
        let mut hidden = vec![0f32; b * t * i];
        gate_rows(&mut hidden, &act.gate_up, i);
        let down = &p[l.down.0..l.down.0 + l.down.1];
        let y = added(&act.x2, &project(&hidden, down, b * t, i, h)?);
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some(Arc::new(act));
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (b, t, h) = self.dims(x.layout(), params.layout())?;
        let (d_x, d) = with_cpu_f32([x, params, &grad], self.name(), |[x_v, p, dy]| {
            let (n, (_, a, w, i), l) = (b * t, self.widths(h), self.layout(h));
            let part = |(start, len): (usize, usize)| &p[start..start + len];
            let kept = self.kept.lock().ok().and_then(|mut k| k.take());
            let act = match kept {
                Some(act) if act.x2.len() == n * h => act,
                _ => Arc::new(self.activations(x_v, p, (b, t, h))?),
            };
            let mut d = vec![0f32; l.total];
            let mut put = |(start, len): (usize, usize), values: &[f32]| d[start..start + len].copy_from_slice(values);
            // MLP: y = x2 + down(gate(h2))
            let mut hidden = vec![0f32; n * i];
            gate_rows(&mut hidden, &act.gate_up, i);
            put(l.down, &outer(dy, &hidden, n, h, i)?);
            drop(hidden);
            let d_hidden = times(dy, part(l.down), n, h, i)?;
            let d_gate_up = gate_grad_rows(&act.gate_up, &d_hidden, i);
            drop(d_hidden);
            put(l.gate_up, &outer(&d_gate_up, &act.h2, n, 2 * i, h)?);
            let d_h2 = times(&d_gate_up, part(l.gate_up), n, 2 * i, h)?;
            drop(d_gate_up);
            let (mut d_x2, mut d_norm2) = (vec![0f32; n * h], vec![0f32; h]);
            norm_grad_rows(&mut d_x2, &mut d_norm2, &act.x2, part(l.norm2), &d_h2, self.spec.eps);
            put(l.norm2, &d_norm2);
            let d_x2 = added(dy, &d_x2);
            // attention: x2 = x + o(attend(qkv(h1)))
            put(l.o, &outer(&d_x2, &act.attn, n, h, a)?);
            let d_attn = times(&d_x2, part(l.o), n, h, a)?;
            let (q, k, v) = self.heads(h);
            let proj = Projections {
                q: (&act.qkv, q),
                k: (&act.qkv, k),
                v: (&act.qkv, v),
            };
            let dst = GradsOut { len: n * w, q, k, v };
            let d_qkv = attend_grad(&self.spec.attention, b, t, &proj, &d_attn, &dst)?;
            drop(d_attn);
            put(l.qkv, &outer(&d_qkv, &act.h1, n, w, h)?);
            let d_h1 = times(&d_qkv, part(l.qkv), n, w, h)?;
            drop(d_qkv);
            let (mut d_x, mut d_norm1) = (vec![0f32; n * h], vec![0f32; h]);
            norm_grad_rows(&mut d_x, &mut d_norm1, x_v, part(l.norm1), &d_h1, self.spec.eps);
            put(l.norm1, &d_norm1);
            let d_x = added(&d_x2, &d_x);
            Ok((d_x, d))
        })?;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(d_x, x.shape(), dev)?),
            Some(Tensor::from_vec(d, params.shape(), dev)?),
        ))
    }
}
