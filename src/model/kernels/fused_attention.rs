//! Fused CPU attention with its backward: rotary embeddings, scaled scores, the causal and
//! padding masks, softmax and the value product in one op, reading the projections where they
//! lie (B, T, heads·hd) and writing the output in the layout `o_proj` takes. Composed from
//! candle ops, the same function costs a transposed copy of q, k and v, a repeated copy of k
//! and v per GQA group, three passes over every (T, T) score matrix and batched matmuls that
//! run one small product at a time; the kernel (`attention_kernel.rs`) runs one task per
//! (sequence, key/value head). `tests/model.rs` compares both directions with the composed
//! path.
// B = batch, T = seq len, nh = query heads, nkv = key/value heads, hd = head dim

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

pub use super::attention_kernel::AttentionSpec;
use super::attention_kernel::{attend, attend_grad, GradsOut, Heads, Projections};
use super::cpu::{f32_inputs, split_flat, with_cpu_f32};

/// Attention over projections `q` (B, T, nh·hd), `k` and `v` (B, T, nkv·hd), contiguous f32 on
/// the CPU, → (B, T, nh·hd) (differentiable).
pub fn fused_attention(q: &Tensor, k: &Tensor, v: &Tensor, spec: &AttentionSpec) -> Result<Tensor> {
    q.apply_op3(k, v, FusedAttention(spec.clone()))
}

struct FusedAttention(AttentionSpec);

impl FusedAttention {
    /// q, k and v, each in a buffer of its own.
    fn projections<'a>(&self, q: &'a [f32], k: &'a [f32], v: &'a [f32]) -> Projections<'a> {
        let d = self.0.head_dim;
        let kv = Heads::alone(self.0.kv_heads * d);
        Projections {
            q: (q, Heads::alone(self.0.heads * d)),
            k: (k, kv),
            v: (v, kv),
        }
    }
}

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
        let (batch, t) = self.0.check(l1, l2, l3)?;
        let [q, k, v] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let y = attend(&self.0, batch, t, &self.projections(q, k, v))?;
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
        let grad = grad.contiguous()?;
        let (batch, t) = self.0.check(q.layout(), k.layout(), v.layout())?;
        let all = with_cpu_f32([q, k, v, &grad], self.name(), |[q_v, k_v, v_v, dy]| {
            let proj = self.projections(q_v, k_v, v_v);
            // [dq | dk | dv], each laid out as its projection
            let (nq, nk) = (q_v.len(), k_v.len());
            let kv = proj.k.1;
            let dst = GradsOut {
                len: nq + 2 * nk,
                q: proj.q.1,
                k: Heads { start: nq, ..kv },
                v: Heads { start: nq + nk, ..kv },
            };
            let all = attend_grad(&self.0, batch, t, &proj, dy, &dst)?;
            Tensor::from_vec(all, nq + 2 * nk, q.device())
        })?;
        let mut grads = split_flat(&all, &[q, k, v])?.into_iter();
        Ok((grads.next(), grads.next(), grads.next()))
    }
}
