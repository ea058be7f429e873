//! SwiGLU's gate, silu(g) · u, fused on the CPU with its backward: one pass each way instead of
//! candle's silu, product and the half-dozen ops of silu's backward (one buffer each). Other
//! devices and dtypes take the composed ops; `tests/model.rs` compares the two.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_inputs, fused_ok, pair_grads};
use super::vmath;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// silu(`gate`) · `up`, same shapes (differentiable).
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if fused_ok(&[gate, up]) && gate.shape() == up.shape() {
        gate.apply_op2(up, SwiGlu)
    } else {
        swiglu_composed(gate, up)
    }
}

/// The composed path of [`swiglu`].
pub fn swiglu_composed(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.silu()? * up
}

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let [g, u] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        let mut out = vec![0f32; g.len()];
        out.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(|(o, (g, u))| vmath::swiglu(o, g, u));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        pair_grads(gate, up, grad, &SwiGluGrad)
    }
}

/// [d gate | d up] = [dy · u · σ(g)(1 + g(1 − σ(g))) | dy · g σ(g)], flat.
struct SwiGluGrad;

impl CustomOp3 for SwiGluGrad {
    fn name(&self) -> &'static str {
        "fused-swiglu-grad"
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
        let [g, u, dy] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let n = g.len();
        let mut out = vec![0f32; 2 * n];
        let (dg, du) = out.split_at_mut(n);
        dg.par_chunks_mut(CHUNK)
            .zip(du.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)).zip(dy.par_chunks(CHUNK)))
            .for_each(|((dg, du), ((g, u), dy))| vmath::swiglu_grad(dg, du, g, u, dy));
        Ok((CpuStorage::F32(out), Shape::from(2 * n)))
    }
}
