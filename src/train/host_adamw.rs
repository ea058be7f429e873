//! AdamW on the CPU in place: the parameter's own storage, its gradient's and the moments are
//! read and written in one pass, with no copy of the parameter or the gradient (a copy out and
//! back cost about as much as the update itself). Elementwise, so the parallel split does not
//! change a bit, nor does the vector width ([`crate::model::kernels::vmath::wide`]).

use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;

use crate::model::kernels::cpu::contiguous_f32;

/// Elements per parallel task (independent of the thread count).
pub const CHUNK: usize = 1 << 14;

/// The scalars of one update (already combined with the step's learning rate and bias
/// corrections).
#[derive(Clone, Copy, Debug)]
pub struct Update {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// 1 − lr·weight_decay (1 for parameters without decay).
    pub keep: f32,
    /// lr / (1 − β1ᵗ).
    pub step: f32,
    /// √(1 − β2ᵗ).
    pub sqrt_bc2: f32,
    /// The clipping factor applied to the gradient.
    pub scale: f32,
}

impl Update {
    /// theta, m, v ← one AdamW update with gradient g (all the same length).
    fn apply(&self, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let u = *self;
        theta
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|((theta, m), (v, g))| {
                crate::model::kernels::vmath::wide(
                    #[inline(always)]
                    || {
                        let n = theta.len().min(m.len()).min(v.len()).min(g.len());
                        let (theta, m, v, g) = (&mut theta[..n], &mut m[..n], &mut v[..n], &g[..n]);
                        for i in 0..n {
                            let gi = g[i] * u.scale;
                            m[i] = m[i] * u.beta1 + gi * (1.0 - u.beta1);
                            v[i] = v[i] * u.beta2 + gi * gi * (1.0 - u.beta2);
                            let denom = v[i].sqrt() / u.sqrt_bc2 + u.eps;
                            theta[i] = theta[i] * u.keep - m[i] / denom * u.step;
                        }
                    },
                )
            });
    }
}

/// The in-place op: the parameter is the destination, the gradient the one source; the
/// moments travel in the op.
struct InPlace<'a> {
    update: Update,
    moments: RefCell<(&'a mut [f32], &'a mut [f32])>,
}

impl InplaceOp2 for InPlace<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, g: &CpuStorage, g_l: &Layout) -> Result<()> {
        let g = contiguous_f32(g, g_l, "adamw")?;
        let theta = match (dst, dst_l.contiguous_offsets()) {
            (CpuStorage::F32(data), Some((a, b))) => &mut data[a..b],
            _ => candle_core::bail!("adamw: a contiguous f32 CPU parameter expected"),
        };
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if g.len() != theta.len() || m.len() != theta.len() || v.len() != theta.len() {
            candle_core::bail!(
                "adamw: parameter of {} values, gradient {}, moments {} and {}",
                theta.len(),
                g.len(),
                m.len(),
                v.len()
            );
        }
        self.update.apply(theta, m, v, g);
        Ok(())
    }
}

/// Updates `param` (a contiguous f32 CPU tensor, e.g. a `Var`'s) in place with `grad` and the
/// moments `m`, `v`.
pub(crate) fn step_in_place(param: &Tensor, grad: &Tensor, m: &mut [f32], v: &mut [f32], update: Update) -> Result<()> {
    let grad = grad.to_dtype(candle_core::DType::F32)?.contiguous()?;
    let op = InPlace {
        update,
        moments: RefCell::new((m, v)),
    };
    param.inplace_op2(&grad, &op)
}

/// The sum of squares of a contiguous f32 CPU tensor's values, in f64, summed per fixed
/// chunk (in 8 lanes, `vmath::sum_by_lanes`) and the chunks in order (independent of the thread
/// count).
pub(crate) fn sum_squares(t: &Tensor) -> Result<f64> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let values = match &*storage {
        candle_core::Storage::Cpu(s) => contiguous_f32(s, layout, "grad_norm")?,
        _ => candle_core::bail!("grad_norm: a CPU tensor expected"),
    };
    let parts: Vec<f64> = values
        .par_chunks(CHUNK)
        .map(|c| {
            crate::model::kernels::vmath::wide(
                #[inline(always)]
                || crate::model::kernels::vmath::sum_by_lanes(c.len(), |i| f64::from(c[i]) * f64::from(c[i])),
            )
        })
        .collect();
    Ok(parts.iter().sum())
}
