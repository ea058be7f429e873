//! Activation checkpointing per block (`train.activation_checkpointing`): a block's forward
//! keeps no activation for the backward; the backward runs the block's forward again from its
//! input and backpropagates through that. Memory of a training step then holds each block's
//! input and output instead of every intermediate tensor of every block, for one more forward
//! per block. On any device and either path of the block (the CPU's one op or the composed
//! ops): the recomputation is the same computation, so the gradients are the same bits.
//!
//! To candle's graph the block is one op on (x, the block's weights flattened into one tensor,
//! whose backward hands each weight its slice): its forward hands over the output computed
//! without a graph, its backward recomputes.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor, Var};

/// The block's forward, from its input (with a graph, so its backward reaches the weights).
pub(crate) type BlockForward = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

struct Recompute {
    /// The output, computed without a graph.
    output: Tensor,
    /// The block's weights (the model's variables), in the order of the flat argument.
    weights: Vec<Tensor>,
    forward: BlockForward,
}

/// The storage of `t` (a copy that an op can return as its result) and its shape: how an op
/// whose output was computed beforehand, at tensor level, hands it to candle's graph.
pub(crate) fn storage_of(t: &Tensor) -> Result<(Storage, Shape)> {
    // cloning a storage copies all of it: a view (an offset, a part) is made whole first
    let whole = {
        let (storage, layout) = t.storage_and_layout();
        layout.is_contiguous()
            && layout.start_offset() == 0
            && storage_len(&storage) == Some(layout.shape().elem_count())
    };
    let t = if whole { t.clone() } else { t.force_contiguous()? };
    let (storage, layout) = t.storage_and_layout();
    let copy = match &*storage {
        Storage::Cpu(s) => Storage::Cpu(s.try_clone(layout)?),
        #[cfg(feature = "cuda")]
        Storage::Cuda(s) => Storage::Cuda(s.try_clone(layout)?),
        #[allow(unreachable_patterns)]
        _ => candle_core::bail!("a CPU or CUDA tensor expected"),
    };
    Ok((copy, layout.shape().clone()))
}

/// Elements of a storage of the usual dtypes (`None`: another).
fn storage_len(s: &Storage) -> Option<usize> {
    match s {
        Storage::Cpu(c) => match c {
            CpuStorage::F32(v) => Some(v.len()),
            CpuStorage::BF16(v) => Some(v.len()),
            CpuStorage::F16(v) => Some(v.len()),
            CpuStorage::F64(v) => Some(v.len()),
            CpuStorage::U32(v) => Some(v.len()),
            _ => None,
        },
        #[cfg(feature = "cuda")]
        Storage::Cuda(c) => {
            use candle_core::cuda_backend::CudaStorageSlice as S;
            match &c.slice {
                S::F32(v) => Some(v.len()),
                S::BF16(v) => Some(v.len()),
                S::F16(v) => Some(v.len()),
                S::F64(v) => Some(v.len()),
                S::U32(v) => Some(v.len()),
                _ => None,
            }
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The CPU storage of a precomputed output, for an op's `cpu_fwd`.
pub(crate) fn cpu_result(t: &Tensor, op: &str) -> Result<(CpuStorage, Shape)> {
    match storage_of(t)? {
        (Storage::Cpu(s), shape) => Ok((s, shape)),
        _ => candle_core::bail!("{op}: the output is not on the CPU"),
    }
}

/// The GPU storage of a precomputed output, for an op's `cuda_fwd`.
#[cfg(feature = "cuda")]
pub(crate) fn cuda_result(t: &Tensor, op: &str) -> Result<(candle_core::CudaStorage, Shape)> {
    match storage_of(t)? {
        (Storage::Cuda(s), shape) => Ok((s, shape)),
        _ => candle_core::bail!("{op}: the output is not on the GPU"),
    }
}

impl CustomOp2 for Recompute {
    fn name(&self) -> &'static str {
        "checkpointed-block"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_result(&self.output, self.name())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda_result(&self.output, self.name())
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // the forward again, from a leaf copy of the input, then back through it with `grad`
        // (d Σ(y·g)/dy = g exactly)
        let input = Var::from_tensor(&x.detach())?;
        let y = (self.forward)(input.as_tensor())?;
        let store = (y * grad.detach())?.sum_all()?.backward()?;
        let grad_x = store.get(input.as_tensor()).cloned();
        let parts = self
            .weights
            .iter()
            .map(|w| match store.get(w) {
                Some(g) => g.flatten_all(),
                None => w.zeros_like()?.flatten_all(),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((grad_x, Some(Tensor::cat(&parts, 0)?)))
    }
}

/// `forward(x)` as a checkpointed op: no activation of it kept for the backward, which
/// recomputes it; `weights` are every variable `forward` reads.
pub(crate) fn checkpointed(x: &Tensor, weights: Vec<Tensor>, forward: BlockForward) -> Result<Tensor> {
    let output = forward(&x.detach())?.detach();
    let flat = Tensor::cat(&weights.iter().map(|w| w.flatten_all()).collect::<Result<Vec<_>>>()?, 0)?;
    x.apply_op2(
        &flat,
        Recompute {
            output,
            weights,
            forward,
        },
    )
}
