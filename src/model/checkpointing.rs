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

impl Recompute {
    /// The output's storage, for the op's result.
    fn output_storage(&self) -> Result<(Storage, Shape)> {
        let (storage, layout) = self.output.storage_and_layout();
        let copy = match &*storage {
            Storage::Cpu(s) => Storage::Cpu(s.try_clone(layout)?),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Storage::Cuda(s.try_clone(layout)?),
            #[allow(unreachable_patterns)]
            _ => candle_core::bail!("activation checkpointing: a CPU or CUDA tensor expected"),
        };
        Ok((copy, layout.shape().clone()))
    }
}

impl CustomOp2 for Recompute {
    fn name(&self) -> &'static str {
        "checkpointed-block"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        match self.output_storage()? {
            (Storage::Cpu(s), shape) => Ok((s, shape)),
            _ => candle_core::bail!("checkpointed-block: the output is not on the CPU"),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        match self.output_storage()? {
            (Storage::Cuda(s), shape) => Ok((s, shape)),
            _ => candle_core::bail!("checkpointed-block: the output is not on the GPU"),
        }
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
