//! The GPU backend (feature `nccl`): the gradients of GPU ranks summed on the device by NCCL, on
//! the stream candle computes on, a bucket at a time; everything else (the loss, the held-out
//! scores, the start's agreement) goes through the host world that launched the ranks (MPI),
//! which also carries NCCL's unique id from rank 0 to the others.
//!
//! A sum that does not complete within the collective timeout (a peer died or hangs) is an
//! error naming it, as on the host: the communicator is then aborted and the job ended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::cuda_backend::cudarc::nccl::{Comm, Id, ReduceOp};
use candle_core::cuda_backend::CudaStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

use super::Communicator;
use crate::error::{Error, Result};
use crate::train::Grads;

/// An NCCL communicator, used only by the thread that trains.
struct Handle(Comm);

impl Handle {
    fn comm(&self) -> &Comm {
        &self.0
    }
}

// SAFETY: the communicator is created, used and dropped by the training thread only (the
// trainer holds the world for the whole run); NCCL allows any thread to call it in turn.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

/// NCCL over the device, the host world for the rest.
pub struct Nccl {
    host: &'static dyn Communicator,
    comm: Arc<Handle>,
    device: Device,
    timeout: Duration,
    broken: AtomicBool,
}

/// The all-reduce (sum) of a contiguous f32 device tensor, as a candle op on its stream.
struct AllReduce(Arc<Handle>);

impl CustomOp1 for AllReduce {
    fn name(&self) -> &'static str {
        "nccl-all-reduce"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("NCCL sums device tensors; a CPU tensor reached it")
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("nccl-all-reduce: a contiguous tensor expected")
        };
        let src = s.as_cuda_slice::<f32>()?.slice(start..end);
        // SAFETY: every element is written by the all-reduce before it is read
        let mut dst = unsafe { s.device.alloc::<f32>(end - start) }?;
        self.0
            .comm()
            .all_reduce(&src, &mut dst, &ReduceOp::Sum)
            .map_err(|e| candle_core::Error::Msg(format!("NCCL all-reduce failed: {e:?}")))?;
        Ok((CudaStorage::wrap_cuda_slice(dst, s.device.clone()), l.shape().clone()))
    }
}

impl Nccl {
    /// Joins the ranks of `host` on their GPUs (`device`, each rank its own): rank 0 draws
    /// NCCL's unique id and the host world carries it to the others.
    pub fn join(host: &'static dyn Communicator, device: &Device, timeout: Duration) -> Result<Self> {
        let Device::Cuda(cuda) = device else {
            return Err(Error::config(
                "train.device",
                "NCCL sums the gradients of GPU ranks: use cuda:N",
            ));
        };
        let error = |what: &str, e: String| {
            Error::Distributed {
            rank: host.rank(),
            size: host.size(),
            reason: format!("{what}: {e} (is libnccl.so.2 installed? `pip install nvidia-nccl-cu13` and its lib folder on LD_LIBRARY_PATH)"),
        }
        };
        let mut mine = [0u8; 128];
        if host.rank() == 0 {
            let id = Id::new().map_err(|e| error("ncclGetUniqueId", format!("{e:?}")))?;
            for (m, c) in mine.iter_mut().zip(id.internal()) {
                *m = *c as u8;
            }
        }
        let all = host.gather_bytes("NCCL's unique id, from rank 0", &mine)?;
        let mut internal = [0 as std::ffi::c_char; 128];
        for (i, b) in internal.iter_mut().zip(&all[..128]) {
            *i = *b as std::ffi::c_char;
        }
        let comm = Comm::from_rank(cuda.cuda_stream(), host.rank(), host.size(), Id::uninit(internal))
            .map_err(|e| error("ncclCommInitRank", format!("{e:?}")))?;
        Ok(Self {
            host,
            comm: Arc::new(Handle(comm)),
            device: device.clone(),
            timeout,
            broken: AtomicBool::new(false),
        })
    }

    /// Waits until the device has done what is queued on its stream, at most the timeout.
    fn wait(&self, what: &str) -> Result<()> {
        let Device::Cuda(cuda) = &self.device else {
            return Ok(());
        };
        let stream = cuda.cuda_stream();
        let event = stream
            .record_event(None)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let start = Instant::now();
        loop {
            match event.try_is_complete() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(candle_core::Error::Msg(format!("{what}: {e}")).into()),
            }
            if start.elapsed() > self.timeout {
                self.broken.store(true, Ordering::SeqCst);
                return Err(Error::Distributed {
                    rank: self.host.rank(),
                    size: self.host.size(),
                    reason: format!(
                        "{what} (NCCL): not completed by every rank within {:.0} s ({}): another rank has died or hangs (its own output says why). The run's last checkpoint is intact: `pretrain --continue` resumes it",
                        self.timeout.as_secs_f64(),
                        super::TIMEOUT_ENV
                    ),
                });
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

impl Communicator for Nccl {
    fn rank(&self) -> usize {
        self.host.rank()
    }
    fn size(&self) -> usize {
        self.host.size()
    }
    fn sum_f32(&self, what: &str, values: &mut [f32]) -> Result<()> {
        self.host.sum_f32(what, values)
    }
    fn sum_f64(&self, what: &str, values: &mut [f64]) -> Result<()> {
        self.host.sum_f64(what, values)
    }
    fn gather_bytes(&self, what: &str, mine: &[u8]) -> Result<Vec<u8>> {
        self.host.gather_bytes(what, mine)
    }
    fn finish(&self) -> Result<()> {
        self.host.finish()
    }
    fn abort_job(&self, code: i32) {
        self.host.abort_job(code)
    }
    fn describe(&self) -> String {
        format!("{}; gradients summed by NCCL on the GPUs", self.host.describe())
    }

    /// The gradients summed on the device: each bucket of whole tensors (up to
    /// [`super::BUCKET_FLOATS`]) flattened into one f32 tensor, all-reduced by NCCL, cut back.
    fn sum_grads(&self, grads: &Grads) -> Result<Grads> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::Distributed {
                rank: self.rank(),
                size: self.size(),
                reason: "NCCL can no longer be used after an earlier sum failed".into(),
            });
        }
        let mut out = Vec::with_capacity(grads.0.len());
        for bucket in super::buckets(&grads.0) {
            let part = &grads.0[bucket];
            let flat: Vec<Tensor> = part
                .iter()
                .map(|g| g.to_dtype(DType::F32)?.flatten_all())
                .collect::<candle_core::Result<_>>()?;
            let summed = Tensor::cat(&flat, 0)?.apply_op1_no_bwd(&AllReduce(self.comm.clone()))?;
            let mut at = 0;
            for g in part {
                let n = g.elem_count();
                out.push(summed.narrow(0, at, n)?.reshape(g.shape())?.to_dtype(g.dtype())?);
                at += n;
            }
        }
        self.wait("the gradients' all-reduce")?;
        Ok(Grads(out))
    }
}
