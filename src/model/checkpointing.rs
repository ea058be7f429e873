//! Activation checkpointing per block (`train.activation_checkpointing`): a block's forward
//! keeps no activation for the backward; the backward runs the block's forward again from its
//! input and backpropagates through that. Memory of a training step then holds each block's
//! input and output instead of every intermediate tensor of every block, for one more forward
//! per block. On any device and either path of the block (the CPU's one op or the composed
//! ops): the recomputation is the same computation, so the gradients are the same bits.
//!
//! To candle's graph the block is one op on (x, the block's weights flattened into one tensor,
//! whose backward hands each weight its slice): its forward hands over the output computed
//! without a graph (`kernels/precomputed.rs`), its backward recomputes.

use std::sync::Arc;

use candle_core::{Result, Tensor, Var};

use super::kernels::precomputed;

/// The block's forward, from its input (with a graph, so its backward reaches the weights).
pub(crate) type BlockForward = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// `forward(x)` as a checkpointed op: no activation of it kept for the backward, which
/// recomputes it; `weights` are every variable `forward` reads.
pub(crate) fn checkpointed(x: &Tensor, weights: Vec<Tensor>, forward: BlockForward) -> Result<Tensor> {
    let output = forward(&x.detach())?.detach();
    let flat = Tensor::cat(&weights.iter().map(|w| w.flatten_all()).collect::<Result<Vec<_>>>()?, 0)?;
    let backward = move |x: &Tensor, _: &Tensor, grad: &Tensor| {
        // the forward again, from a leaf copy of the input, then back through it with `grad`
        // (d Σ(y·g)/dy = g exactly)
        let input = Var::from_tensor(&x.detach())?;
        let y = forward(input.as_tensor())?;
        let store = (y * grad.detach())?.sum_all()?.backward()?;
        let grad_x = store.get(input.as_tensor()).cloned();
        let parts = weights
            .iter()
            .map(|w| match store.get(w) {
                Some(g) => g.flatten_all(),
                None => w.zeros_like()?.flatten_all(),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((grad_x, Some(Tensor::cat(&parts, 0)?)))
    };
    precomputed::binary("checkpointed-block", x, &flat, output, Box::new(backward))
}
