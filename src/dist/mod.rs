//! Data-parallel pretraining across processes: which process this is (its rank) among how many
//! (the world), and the collectives the trainer needs, behind one trait.
//!
//! A process started by a launcher (`mpirun -np N`, `srun --mpi=pmix` under Slurm) joins the
//! launcher's world through the system's MPI library ([`mpi`], opened at run time, so the
//! default build needs neither OpenMPI nor a compiler for it); a process started alone is a
//! world of one ([`Single`]) and runs exactly as it would without this module: no collective is
//! ever called on it.
//!
//! Every collective of [`Communicator`] gives every rank the same bits (the MPI backend reduces
//! each element at one rank, then gathers), so the optimizer's step is identical on every rank,
//! and each waits at most the collective timeout ([`timeout`]) for the other ranks: a rank that
//! died or hangs ends the job with an error rather than a hang.

pub(crate) mod agree;
pub mod mpi;
#[cfg(feature = "nccl")]
pub mod nccl;
pub mod shard;
pub mod slurm;

use std::sync::OnceLock;
use std::time::Duration;

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::train::Grads;

/// The environment variable holding the collective timeout, in seconds (default
/// [`DEFAULT_TIMEOUT_S`]).
pub const TIMEOUT_ENV: &str = "ENCODERLAB_COLLECTIVE_TIMEOUT";

/// How long a collective waits for the other ranks by default: longer than any step, evaluation
/// or checkpoint one rank does while the others wait.
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;

/// Floats per gradient bucket (16 MiB of f32): the gradients are reduced a bucket at a time.
pub const BUCKET_FLOATS: usize = 1 << 22;

/// The collectives of data-parallel training. Every method is called by every rank in the same
/// order; each gives every rank the same bits.
pub trait Communicator: Send + Sync {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// How many processes train together.
    fn size(&self) -> usize;
    /// Replaces `values` by their element-wise sum over the ranks. `what` names the
    /// collective in a timeout's error.
    fn sum_f32(&self, what: &str, values: &mut [f32]) -> Result<()>;
    /// [`Communicator::sum_f32`] in f64.
    fn sum_f64(&self, what: &str, values: &mut [f64]) -> Result<()>;
    /// Every rank's `mine` (all of the same length), concatenated in rank order.
    fn gather_bytes(&self, what: &str, mine: &[u8]) -> Result<Vec<u8>>;
    /// Ends this process's part in the world (MPI_Finalize); the last call before exiting.
    fn finish(&self) -> Result<()>;
    /// Ends every process of the job (MPI_Abort) after an error on this one, where the others
    /// might otherwise wait for it; nothing for a world of one.
    fn abort_job(&self, code: i32);
    /// The launcher and library, for messages (`single process`, `OpenMPI (mpirun)`).
    fn describe(&self) -> String;

    /// Replaces `grads` by their sum over the ranks, a bucket of [`BUCKET_FLOATS`] at a time
    /// (on the host; a device backend may override it).
    fn sum_grads(&self, grads: &Grads) -> Result<Grads> {
        if self.size() == 1 {
            return Ok(Grads(grads.0.clone()));
        }
        let mut out = Vec::with_capacity(grads.0.len());
        for bucket in buckets(&grads.0) {
            let part = &grads.0[bucket];
            let mut flat = Vec::with_capacity(part.iter().map(|g| g.elem_count()).sum());
            for g in part {
                flat.extend(g.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
            }
            self.sum_f32("the gradients' all-reduce", &mut flat)?;
            let mut at = 0;
            for g in part {
                let n = g.elem_count();
                let t = Tensor::from_slice(&flat[at..at + n], g.shape(), g.device())?.to_dtype(g.dtype())?;
                out.push(t);
                at += n;
            }
        }
        Ok(Grads(out))
    }
}

/// The gradients' buckets: consecutive runs of whole tensors of at most [`BUCKET_FLOATS`]
/// values (a larger tensor alone).
pub(crate) fn buckets(tensors: &[Tensor]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < tensors.len() {
        let (mut end, mut floats) = (start + 1, tensors[start].elem_count());
        while end < tensors.len() && floats + tensors[end].elem_count() <= BUCKET_FLOATS {
            floats += tensors[end].elem_count();
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// A world of one process: every collective is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct Single;

impl Communicator for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _: &str, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn sum_f64(&self, _: &str, _: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn gather_bytes(&self, _: &str, mine: &[u8]) -> Result<Vec<u8>> {
        Ok(mine.to_vec())
    }
    fn finish(&self) -> Result<()> {
        Ok(())
    }
    fn abort_job(&self, _: i32) {}
    fn describe(&self) -> String {
        "single process".into()
    }
}

/// How this process was started, read from the launcher's environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Alone (or a launcher's world of one).
    Alone,
    /// By an MPI launcher: `size` processes (from `mpirun` or `srun --mpi=…`).
    Mpi {
        /// Processes in the world.
        size: usize,
        /// The launcher, for messages.
        launcher: String,
    },
}

fn env_usize(vars: &impl Fn(&str) -> Option<String>, key: &str) -> Option<usize> {
    vars(key).and_then(|v| v.trim().parse().ok())
}

/// How the process was started, from its environment (`vars` reads a variable): OpenMPI's
/// `mpirun` sets `OMPI_COMM_WORLD_SIZE`; `srun --mpi=pmix|pmi2` sets `PMIX_RANK` or `PMI_RANK`
/// and `SLURM_STEP_NUM_TASKS`; MPICH's `mpiexec` sets `PMI_SIZE`. An `srun` of several tasks
/// with no MPI plugin is refused: each task would train alone, on the whole batch, into the same
/// folder.
pub fn launch_from(vars: impl Fn(&str) -> Option<String>) -> Result<Launch> {
    let slurm_tasks = env_usize(&vars, "SLURM_STEP_NUM_TASKS");
    let (size, launcher) = if let Some(n) = env_usize(&vars, "OMPI_COMM_WORLD_SIZE") {
        (n, "OpenMPI's mpirun")
    } else if vars("PMIX_RANK").is_some() || vars("PMI_RANK").is_some() {
        match env_usize(&vars, "PMI_SIZE").or(slurm_tasks) {
            Some(n) => (n, if slurm_tasks.is_some() { "srun" } else { "mpiexec" }),
            None => {
                return Err(Error::config(
                    "launch",
                    "started by a PMI launcher that sets neither PMI_SIZE nor SLURM_STEP_NUM_TASKS: use mpirun -np N or srun --mpi=pmix",
                ))
            }
        }
    } else if let Some(n) = slurm_tasks.filter(|n| *n > 1) {
        return Err(Error::config(
            "launch",
            format!(
                "srun started {n} tasks without an MPI plugin, so each would train alone on the whole batch into the same folder: launch with `srun --mpi=pmix` (or `mpirun -np {n}` inside the allocation)"
            ),
        ));
    } else {
        return Ok(Launch::Alone);
    };
    Ok(match size {
        0 | 1 => Launch::Alone,
        size => Launch::Mpi {
            size,
            launcher: launcher.into(),
        },
    })
}

/// Processes of this job on this machine (the launcher's count), for the default number of
/// CPU threads per process; 1 when alone.
pub fn local_ranks() -> usize {
    let vars = |k: &str| std::env::var(k).ok();
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
        .iter()
        .find_map(|k| env_usize(&vars, k))
        .filter(|_| !matches!(launch_from(vars), Ok(Launch::Alone)))
        .unwrap_or(1)
        .max(1)
}

/// This process's rank among the job's processes on this machine (0 when alone).
pub fn local_rank() -> usize {
    let vars = |k: &str| std::env::var(k).ok();
    if matches!(launch_from(vars), Ok(Launch::Alone)) {
        return 0;
    }
    ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"]
        .iter()
        .find_map(|k| env_usize(&vars, k))
        .unwrap_or(0)
}

/// The device a rank trains on, for the configured `name`: on the CPU the CPU; `cuda:N` for
/// local rank l is GPU (N + l) mod the GPUs this process sees (`visible`, from
/// `CUDA_VISIBLE_DEVICES`; `None` when unset): so `cuda:0` spreads the ranks of a machine over
/// its GPUs under `mpirun`, and is each rank's own GPU under `srun --gpus-per-task=1`.
pub fn rank_device(name: &str, local_rank: usize, visible: Option<usize>) -> String {
    let ordinal = match name {
        "cuda" => Some(0),
        n => n.strip_prefix("cuda:").and_then(|o| o.parse::<usize>().ok()),
    };
    match ordinal {
        Some(n) => {
            let k = n + local_rank;
            format!("cuda:{}", visible.filter(|v| *v > 0).map_or(k, |v| k % v))
        }
        None => name.to_string(),
    }
}

/// [`rank_device`] for this process, in a world of `size`: the configured name when alone.
pub fn this_rank_device(name: &str, size: usize) -> String {
    if size == 1 {
        return name.to_string();
    }
    let visible = std::env::var("CUDA_VISIBLE_DEVICES")
        .ok()
        .map(|v| v.split(',').filter(|d| !d.trim().is_empty()).count());
    rank_device(name, local_rank(), visible)
}

/// The CPU threads a rank uses when none are asked for: the cores this process may run on
/// when the launcher bound it to some (`srun --cpus-per-task`, `mpirun --map-by …:PE=N`; note
/// that OpenMPI's `mpirun -np 2` binds each rank to one core), else the machine's cores shared
/// between its ranks.
pub fn default_threads() -> usize {
    let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| count_cpus(&s))
        .unwrap_or(usable);
    threads_for(usable, online, local_ranks())
}

/// [`default_threads`] from the cores this process may use, the machine's, and its ranks.
fn threads_for(usable: usize, online: usize, local_ranks: usize) -> usize {
    match usable < online {
        true => usable,
        false => usable / local_ranks.max(1),
    }
    .max(1)
}

/// The CPUs of a Linux CPU list (`0-3,8-11`).
fn count_cpus(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<usize>().ok()? + 1 - a.trim().parse::<usize>().ok()?,
            None => part.trim().parse::<usize>().map(|_| 1).ok()?,
        };
    }
    Some(n)
}

/// The collective timeout: [`TIMEOUT_ENV`] seconds, else [`DEFAULT_TIMEOUT_S`].
pub fn timeout() -> Result<Duration> {
    let s = match std::env::var(TIMEOUT_ENV) {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| Error::config(TIMEOUT_ENV, format!("`{v}` is not a number of seconds above 0")))?,
        Err(_) => DEFAULT_TIMEOUT_S,
    };
    Ok(Duration::from_secs_f64(s))
}

static WORLD: OnceLock<Box<dyn Communicator>> = OnceLock::new();

/// This process's world, joined on first use: the launcher's (through MPI) when it was started
/// by one, else a world of one. Joining twice returns the same world.
pub fn world() -> Result<&'static dyn Communicator> {
    if let Some(w) = WORLD.get() {
        return Ok(w.as_ref());
    }
    let comm: Box<dyn Communicator> = match launch_from(|k| std::env::var(k).ok())? {
        Launch::Alone => Box::new(Single),
        Launch::Mpi { size, launcher } => Box::new(mpi::Mpi::join(size, &launcher, timeout()?)?),
    };
    Ok(WORLD.get_or_init(|| comm).as_ref())
}

/// The environment variable that asks for NCCL on a single GPU (`1`), where it is otherwise
/// used only between several ranks: to check the NCCL path on one card.
pub const NCCL_ENV: &str = "ENCODERLAB_NCCL";

/// The communicator of a run on `device`: with the `nccl` feature, GPU ranks sum their
/// gradients on the device by NCCL (and a single GPU does with `ENCODERLAB_NCCL=1`); otherwise
/// `None`: `world` itself, which sums on the host.
pub fn device_world(
    world: &'static dyn Communicator,
    device: &candle_core::Device,
) -> Result<Option<Box<dyn Communicator>>> {
    #[cfg(feature = "nccl")]
    if device.is_cuda() && (world.size() > 1 || std::env::var(NCCL_ENV).is_ok_and(|v| v == "1")) {
        return Ok(Some(Box::new(nccl::Nccl::join(world, device, timeout()?)?)));
    }
    if device.is_cuda() && world.size() > 1 {
        tracing::warn!("GPU ranks without the `nccl` feature: gradients are summed through the host (slow at scale)");
    }
    Ok(None)
}

/// This process's world if it has joined one (`None` before the first [`world`]).
pub fn joined() -> Option<&'static dyn Communicator> {
    WORLD.get().map(|w| w.as_ref())
}

/// Ends this process's part in its world, if it joined one (call once, before exiting).
pub fn finish() -> Result<()> {
    match WORLD.get() {
        Some(w) => w.finish(),
        None => Ok(()),
    }
}

/// After an error: ends every process of the job when this one is part of a world of several
/// (the others would wait for it until their timeout); nothing otherwise.
pub fn abort_job(code: i32) {
    if let Some(w) = WORLD.get() {
        if w.size() > 1 {
            w.abort_job(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| owned.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn launchers_are_recognised_from_their_variables() {
        assert_eq!(launch_from(vars(&[])).unwrap(), Launch::Alone);
        assert_eq!(
            launch_from(vars(&[("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_RANK", "1")])).unwrap(),
            Launch::Mpi {
                size: 4,
                launcher: "OpenMPI's mpirun".into()
            }
        );
        // mpirun -np 1 is a world of one: no MPI at all
        assert_eq!(
            launch_from(vars(&[("OMPI_COMM_WORLD_SIZE", "1")])).unwrap(),
            Launch::Alone
        );
        assert_eq!(
            launch_from(vars(&[("PMIX_RANK", "0"), ("SLURM_STEP_NUM_TASKS", "8")])).unwrap(),
            Launch::Mpi {
                size: 8,
                launcher: "srun".into()
            }
        );
        // a batch script's own step (one task) is alone
        assert_eq!(
            launch_from(vars(&[("SLURM_STEP_NUM_TASKS", "1")])).unwrap(),
            Launch::Alone
        );
    }

    #[test]
    fn ranks_of_a_machine_spread_over_its_gpus() {
        assert_eq!(rank_device("cpu", 3, Some(8)), "cpu");
        // mpirun on an 8-GPU node: rank l on GPU l
        assert_eq!(rank_device("cuda:0", 5, None), "cuda:5");
        assert_eq!(rank_device("cuda", 5, Some(8)), "cuda:5");
        // srun --gpus-per-task=1: every rank sees its own GPU as its only one
        assert_eq!(rank_device("cuda:0", 5, Some(1)), "cuda:0");
        // two GPUs per rank asked as cuda:1 of 2 visible
        assert_eq!(rank_device("cuda:1", 0, Some(2)), "cuda:1");
    }

    #[test]
    fn srun_without_an_mpi_plugin_is_refused() {
        let e = launch_from(vars(&[("SLURM_STEP_NUM_TASKS", "2")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--mpi=pmix"), "{e}");
    }

    #[test]
    fn a_bound_rank_uses_its_cores_an_unbound_one_its_share() {
        assert_eq!(count_cpus("0-15\n"), Some(16));
        assert_eq!(count_cpus("0-3,8-11"), Some(8));
        assert_eq!(count_cpus("0"), Some(1));
        assert_eq!(count_cpus("x"), None);
        // srun --cpus-per-task=8 on a 64-core node with 8 ranks: its own 8 cores
        assert_eq!(threads_for(8, 64, 8), 8);
        // mpirun --bind-to none, 4 ranks on 32 cores: a quarter each
        assert_eq!(threads_for(32, 32, 4), 8);
        // mpirun -np 2 binds each rank to one core
        assert_eq!(threads_for(1, 2, 2), 1);
    }

    #[test]
    fn buckets_hold_whole_tensors_up_to_the_limit() {
        let t = |n: usize| Tensor::zeros(n, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let half = BUCKET_FLOATS / 2;
        let tensors = [t(half), t(half), t(1), t(BUCKET_FLOATS * 2), t(3)];
        assert_eq!(buckets(&tensors), [0..2, 2..3, 3..4, 4..5]);
        assert!(buckets(&[]).is_empty());
    }

    #[test]
    fn a_single_world_sums_to_itself() {
        let w = Single;
        let mut v = vec![1.5f32, -2.0];
        w.sum_f32("test", &mut v).unwrap();
        assert_eq!(v, [1.5, -2.0]);
        assert_eq!(w.gather_bytes("test", b"ab").unwrap(), b"ab");
    }
}
