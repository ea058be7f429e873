//! The whole SwiGLU MLP, down(silu(x·Wgᵀ) · (x·Wuᵀ)), as one CPU op with its own backward.
//!
//! Composed of three projections and the gate, the MLP puts four activations into candle's
//! graph (gate, up, their product, and the normalised input three times over), and candle's
//! backward gives each of them a zeroed buffer plus an addition per gradient it receives: on
//! the `small` preset that bookkeeping cost more than the gate itself. Here the gate and up
//! projections are one product with the two weights stacked, the op keeps that product for its
//! backward, and the graph sees one input and three weights. Other devices and dtypes take the
//! composed ops; `tests/model.rs` compares the two.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_inputs, fused_ok, with_cpu_f32};
use super::fused_linear::linear_composed;
use super::fused_swiglu::swiglu_composed;
use super::gemm::{par_matmuls, Product};
use super::vmath;

/// The MLP of `x` (…, hidden) with `gate`, `up` (intermediate, hidden) and `down` (hidden,
/// intermediate): fused on the CPU in f32, composed elsewhere (differentiable).
pub fn mlp(x: &Tensor, gate: &Tensor, up: &Tensor, down: &Tensor) -> Result<Tensor> {
    if fused_ok(&[x, gate, up, down]) && gate.shape() == up.shape() {
        let stacked = Tensor::cat(&[gate, up], 0)?;
        x.apply_op3(&stacked, down, FusedMlp::default())
    } else {
        mlp_composed(x, gate, up, down)
    }
}

/// The composed path of [`mlp`].
pub fn mlp_composed(x: &Tensor, gate: &Tensor, up: &Tensor, down: &Tensor) -> Result<Tensor> {
    let hidden = swiglu_composed(&linear_composed(x, gate)?, &linear_composed(x, up)?)?;
    linear_composed(&hidden, down)
}

/// The op; keeps the stacked gate/up product (rows × 2·intermediate) for the backward.
#[derive(Default)]
struct FusedMlp {
    gate_up: Mutex<Option<Arc<Vec<f32>>>>,
}

/// (rows, hidden, intermediate) from x (…, hidden), the stacked weight (2·inter, hidden) and
/// down (hidden, inter).
fn dims(x: &Layout, stacked: &Layout, down: &Layout) -> Result<(usize, usize, usize)> {
    let (two_i, h) = stacked.shape().dims2()?;
    let (h_out, i) = down.shape().dims2()?;
    if x.dims().last() != Some(&h) || h_out != h || two_i != 2 * i {
        candle_core::bail!(
            "mlp: input {:?}, gate/up {:?} and down {:?} do not fit together",
            x.dims(),
            stacked.dims(),
            down.dims()
        );
    }
    Ok((x.shape().elem_count() / h.max(1), h, i))
}

/// silu(g) · u of each row of `gate_up` ([g | u], 2·inter wide), into `out` (inter wide).
pub(super) fn gate_rows(out: &mut [f32], gate_up: &[f32], inter: usize) {
    out.par_chunks_mut(inter)
        .zip(gate_up.par_chunks(2 * inter))
        .for_each(|(o, gu)| vmath::swiglu(o, &gu[..inter], &gu[inter..]));
}

/// The gradient of [`gate_rows`]: [d gate | d up] per row, given `d_hidden` (inter wide).
pub(super) fn gate_grad_rows(gate_up: &[f32], d_hidden: &[f32], inter: usize) -> Vec<f32> {
    let mut d_gate_up = vec![0f32; gate_up.len()];
    d_gate_up
        .par_chunks_mut(2 * inter)
        .zip(gate_up.par_chunks(2 * inter).zip(d_hidden.par_chunks(inter)))
        .for_each(|(d, (gu, dh))| {
            let (dg, du) = d.split_at_mut(inter);
            vmath::swiglu_grad(dg, du, &gu[..inter], &gu[inter..], dh);
        });
    d_gate_up
}

impl FusedMlp {
    /// The gate/up product of the forward (recomputed if it is gone).
    fn gate_up(&self, x: &[f32], stacked: &[f32], (n, h, i): (usize, usize, usize)) -> Result<Arc<Vec<f32>>> {
        if let Some(kept) = self.gate_up.lock().ok().and_then(|g| g.clone()) {
            if kept.len() == n * 2 * i {
                return Ok(kept);
            }
        }
        Ok(Arc::new(par_matmuls(&[Product {
            m: n,
            n: 2 * i,
            k: h,
            lhs: (x, h, 1),
            rhs: (stacked, 1, h),
        }])?))
    }
}

impl CustomOp3 for FusedMlp {
    fn name(&self) -> &'static str {
        "fused-mlp"
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
        let (n, h, i) = dims(l1, l2, l3)?;
        let [x, stacked, down] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let gate_up = self.gate_up(x, stacked, (n, h, i))?;
        let mut hidden = vec![0f32; n * i];
        gate_rows(&mut hidden, &gate_up, i);
        let y = par_matmuls(&[Product {
            m: n,
            n: h,
            k: i,
            lhs: (&hidden, i, 1),
            rhs: (down, 1, i),
        }])?;
        if let Ok(mut kept) = self.gate_up.lock() {
            *kept = Some(gate_up);
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        stacked: &Tensor,
        down: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (n, h, i) = dims(x.layout(), stacked.layout(), down.layout())?;
        let (d_x, d_stacked, d_down) =
            with_cpu_f32([x, stacked, down, &grad], self.name(), |[x_v, w_v, down_v, dy]| {
                let gate_up = self.gate_up(x_v, w_v, (n, h, i))?;
                // d hidden = dy · down (rows × inter); the hidden activations again, for d down
                let d_hidden = par_matmuls(&[Product {
                    m: n,
                    n: i,
                    k: h,
                    lhs: (dy, h, 1),
                    rhs: (down_v, i, 1),
                }])?;
                let mut hidden = vec![0f32; n * i];
                gate_rows(&mut hidden, &gate_up, i);
                let d_down = par_matmuls(&[Product {
                    m: h,
                    n: i,
                    k: n,
                    lhs: (dy, 1, h),
                    rhs: (&hidden, i, 1),
                }])?;
                drop(hidden);
                // [d gate | d up] per row
                let d_gate_up = gate_grad_rows(&gate_up, &d_hidden, i);
                drop(d_hidden);
                let d_x = Product {
                    m: n,
                    n: h,
                    k: 2 * i,
                    lhs: (&d_gate_up, 2 * i, 1),
                    rhs: (w_v, h, 1),
                };
                let d_stacked = Product {
                    m: 2 * i,
                    n: h,
                    k: n,
                    lhs: (&d_gate_up, 1, 2 * i),
                    rhs: (x_v, h, 1),
                };
                let (d_x, d_stacked) = (par_matmuls(&[d_x])?, par_matmuls(&[d_stacked])?);
                Ok((d_x, d_stacked, d_down))
            })?;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(d_x, x.shape(), dev)?),
            Some(Tensor::from_vec(d_stacked, stacked.shape(), dev)?),
            Some(Tensor::from_vec(d_down, down.shape(), dev)?),
        ))
    }
}
