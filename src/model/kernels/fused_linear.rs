//! y = x · Wᵀ with the weight cast to x's dtype at use. On the CPU in f32 it is one op whose
//! backward writes the weight's gradient row-major in one product (candle's matmul of `x · Wᵀ`
//! yields the gradient of the transposed view, which then costs a strided transposing add into a
//! zeroed buffer); elsewhere candle's ops composed.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Module, Result, Shape, Tensor};

use super::cpu::{f32_inputs, fused_ok, pair_grads};
use super::gemm::{par_matmuls, Product};

/// y = x · Wᵀ, W of shape (outputs, inputs): the fused op where it applies, else
/// [`linear_composed`].
pub fn linear(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if fused_ok(&[x, weight]) {
        x.apply_op2(weight, Project)
    } else {
        linear_composed(x, weight)
    }
}

/// The composed path (any device and dtype): candle's linear with the weight cast to `x`'s
/// dtype.
pub fn linear_composed(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    candle_nn::Linear::new(weight.to_dtype(x.dtype())?, None).forward(x)
}

/// (rows, inputs, outputs) of x (…, inputs) and W (outputs, inputs).
fn dims(x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
    let (outputs, inputs) = w.shape().dims2()?;
    if x.dims().last() != Some(&inputs) {
        candle_core::bail!("linear: input {:?} for a weight {:?}", x.dims(), w.dims());
    }
    Ok((x.shape().elem_count() / inputs.max(1), inputs, outputs))
}

struct Project;

impl CustomOp2 for Project {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, i, o) = dims(l1, l2)?;
        let [x, w] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        let y = par_matmuls(&[Product {
            m: n,
            n: o,
            k: i,
            lhs: (x, i, 1),
            rhs: (w, 1, i),
        }])?;
        let mut shape = l1.dims().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = o;
        }
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        pair_grads(x, w, grad, &ProjectGrad)
    }
}

/// [dx | dW], flat: dx = dy · W, dW = dyᵀ · x.
struct ProjectGrad;

impl CustomOp3 for ProjectGrad {
    fn name(&self) -> &'static str {
        "fused-linear-grad"
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
        let (n, i, o) = dims(l1, l2)?;
        let [x, w, dy] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let dx = Product {
            m: n,
            n: i,
            k: o,
            lhs: (dy, o, 1),
            rhs: (w, i, 1),
        };
        let dw = Product {
            m: o,
            n: i,
            k: n,
            lhs: (dy, 1, o),
            rhs: (x, i, 1),
        };
        let out = par_matmuls(&[dx, dw])?;
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}
