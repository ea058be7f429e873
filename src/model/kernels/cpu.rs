//! What the fused CPU ops share: reading a contiguous f32 buffer out of candle's storage, and
//! splitting the one flat tensor a backward op returns into the gradients of its inputs.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Storage, Tensor};

/// Whether the fused CPU kernels take all of `tensors`: contiguous f32 on the CPU.
pub(crate) fn fused_ok(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
}

/// The values of a contiguous f32 CPU tensor; an error naming `op` otherwise.
pub(crate) fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op}: contiguous f32 CPU input expected"),
    }
}

/// The values of a custom op's inputs, each a contiguous f32 CPU tensor; an error naming `op`
/// otherwise.
pub(crate) fn f32_inputs<'a, const N: usize>(
    op: &str,
    inputs: [(&'a CpuStorage, &Layout); N],
) -> Result<[&'a [f32]; N]> {
    let mut values: [&[f32]; N] = [&[]; N];
    for (v, (storage, layout)) in values.iter_mut().zip(inputs) {
        *v = contiguous_f32(storage, layout, op)?;
    }
    Ok(values)
}

/// Runs `f` on the values of `tensors`, contiguous f32 CPU tensors, read-locked while it runs
/// (what a fused op's backward reads); an error naming `op` otherwise.
pub(crate) fn with_cpu_f32<const N: usize, R>(
    tensors: [&Tensor; N],
    op: &str,
    f: impl FnOnce([&[f32]; N]) -> Result<R>,
) -> Result<R> {
    let guards = tensors.map(|t| t.storage_and_layout());
    let mut values: [&[f32]; N] = [&[]; N];
    for (v, (storage, layout)) in values.iter_mut().zip(&guards) {
        *v = match &**storage {
            Storage::Cpu(s) => contiguous_f32(s, layout, op)?,
            _ => candle_core::bail!("{op}: CPU tensors expected"),
        };
    }
    f(values)
}

/// `flat` (the gradients of `like`'s tensors end to end) cut into tensors shaped like them.
pub(crate) fn split_flat(flat: &Tensor, like: &[&Tensor]) -> Result<Vec<Tensor>> {
    let mut start = 0;
    like.iter()
        .map(|t| {
            let n = t.elem_count();
            let part = flat.narrow(0, start, n)?.reshape(t.shape());
            start += n;
            part
        })
        .collect()
}

/// The gradients of a two-input op's inputs `a` and `b`, computed by `grad_op`: a backward op of
/// (a, b, the output's gradient) that returns both end to end ([da | db]).
pub(crate) fn pair_grads<C: CustomOp3>(
    a: &Tensor,
    b: &Tensor,
    grad: &Tensor,
    grad_op: &C,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let both = a.apply_op3_no_bwd(b, &grad.contiguous()?, grad_op)?;
    let mut grads = split_flat(&both, &[a, b])?.into_iter();
    Ok((grads.next(), grads.next()))
}
