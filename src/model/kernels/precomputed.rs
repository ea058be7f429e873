//! An op whose output was computed beforehand, at tensor level and without a graph, and whose
//! backward is a closure: how a forward-only kernel (candle's fused CUDA ops,
//! `device_fused.rs`) or a block recomputed in the backward (activation checkpointing,
//! `model/checkpointing.rs`) joins candle's graph.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};

/// The backward of a one-input op: (input, output's gradient) → the input's gradient.
pub(crate) type Backward1 = Box<dyn Fn(&Tensor, &Tensor) -> Result<Option<Tensor>> + Send + Sync>;

/// The backward of a two-input op: (a, b, output's gradient) → their gradients.
pub(crate) type Backward2 =
    Box<dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> + Send + Sync>;

/// The backward of a three-input op: (a, b, c, output's gradient) → their gradients.
pub(crate) type Backward3 = Box<
    dyn Fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)>
        + Send
        + Sync,
>;

/// `output` as the result of an op on `x` whose backward is `backward`.
pub(crate) fn unary(name: &'static str, x: &Tensor, output: Tensor, backward: Backward1) -> Result<Tensor> {
    x.apply_op1(Precomputed { name, output, backward })
}

/// `output` as the result of an op on (`a`, `b`) whose backward is `backward`.
pub(crate) fn binary(
    name: &'static str,
    a: &Tensor,
    b: &Tensor,
    output: Tensor,
    backward: Backward2,
) -> Result<Tensor> {
    a.apply_op2(b, Precomputed { name, output, backward })
}

/// `output` as the result of an op on (`a`, `b`, `c`) whose backward is `backward`.
pub(crate) fn ternary(
    name: &'static str,
    [a, b, c]: [&Tensor; 3],
    output: Tensor,
    backward: Backward3,
) -> Result<Tensor> {
    a.apply_op3(b, c, Precomputed { name, output, backward })
}

struct Precomputed<B> {
    name: &'static str,
    output: Tensor,
    backward: B,
}

impl CustomOp1 for Precomputed<Backward1> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_result(&self.output, self.name)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, _: &candle_core::CudaStorage, _: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda_result(&self.output, self.name)
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        (self.backward)(x, grad)
    }
}

impl CustomOp2 for Precomputed<Backward2> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_result(&self.output, self.name)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda_result(&self.output, self.name)
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        (self.backward)(a, b, grad)
    }
}

impl CustomOp3 for Precomputed<Backward3> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_result(&self.output, self.name)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda_result(&self.output, self.name)
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        c: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        (self.backward)(a, b, c, grad)
    }
}

/// The storage of `t` (a copy that an op can return as its result) and its shape.
fn storage_of(t: &Tensor) -> Result<(Storage, Shape)> {
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
fn cpu_result(t: &Tensor, op: &str) -> Result<(CpuStorage, Shape)> {
    match storage_of(t)? {
        (Storage::Cpu(s), shape) => Ok((s, shape)),
        _ => candle_core::bail!("{op}: the output is not on the CPU"),
    }
}

/// The GPU storage of a precomputed output, for an op's `cuda_fwd`.
#[cfg(feature = "cuda")]
fn cuda_result(t: &Tensor, op: &str) -> Result<(candle_core::CudaStorage, Shape)> {
    match storage_of(t)? {
        (Storage::Cuda(s), shape) => Ok((s, shape)),
        _ => candle_core::bail!("{op}: the output is not on the GPU"),
    }
}
