//! The MPI backend: the system's MPI library (OpenMPI, or an MPICH-family one), opened at run
//! time rather than linked (`abi.rs`), so that the default build needs neither MPI's headers nor
//! libclang, and one binary runs alone, under `mpirun`, `mpiexec` or `srun`.
//!
//! Sums are a reduce-scatter then an all-gather (each element reduced at one rank, then copied
//! to all), so every rank holds the same bits, whatever algorithm MPI picks. Every collective
//! is non-blocking and polled against the collective timeout: a peer that died or hangs gives
//! an error naming the collective instead of a hang.

mod abi;

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use abi::LIBMPI_ENV;
use abi::{Api, Handle, Loaded};

use super::Communicator;
use crate::error::{Error, Result};

/// The datatypes the collectives carry.
trait Element: Copy + Default {
    fn datatype<H: Handle>(api: &Api<H>) -> H;
}
impl Element for f32 {
    fn datatype<H: Handle>(api: &Api<H>) -> H {
        api.float
    }
}
impl Element for f64 {
    fn datatype<H: Handle>(api: &Api<H>) -> H {
        api.double
    }
}
impl Element for u8 {
    fn datatype<H: Handle>(api: &Api<H>) -> H {
        api.byte
    }
}

/// A process of an MPI world.
pub struct Mpi {
    loaded: Loaded,
    rank: usize,
    size: usize,
    launcher: String,
    library: String,
    timeout: Duration,
    /// Set after a collective timed out: its buffers were handed to MPI for good, and MPI can
    /// no longer be used but to abort.
    broken: AtomicBool,
    finished: AtomicBool,
}

// SAFETY: the handles are OpenMPI's global objects' addresses or MPICH's constants, valid for
// the life of the loaded library; MPI is initialised with MPI_THREAD_FUNNELED and only the
// thread that drives training calls it (the trainer holds the world for the whole run).
unsafe impl Send for Mpi {}
// SAFETY: as above.
unsafe impl Sync for Mpi {}

/// Runs `$body` with `$api` bound to the loaded library's API, whatever its ABI.
macro_rules! with_api {
    ($self:ident, $api:ident => $body:expr) => {
        match &$self.loaded {
            Loaded::Open { api: $api, .. } => $body,
            Loaded::Mpich { api: $api, .. } => $body,
        }
    };
}

impl Mpi {
    /// Opens the MPI library, initialises it and joins the launcher's world, which must have
    /// `size` processes (what the launcher's variables said).
    pub fn join(size: usize, launcher: &str, timeout: Duration) -> Result<Self> {
        // MPICH's and Intel MPI's mpiexec set PMI_RANK; OpenMPI's mpirun and srun's PMIx do not
        let mpich_first = std::env::var("PMI_RANK").is_ok() && std::env::var("OMPI_COMM_WORLD_SIZE").is_err();
        let (loaded, library) = abi::open(mpich_first)?;
        let (rank, world_size) = match &loaded {
            Loaded::Open { api, .. } => api.init(&library)?,
            Loaded::Mpich { api, .. } => api.init(&library)?,
        };
        let me = Self {
            loaded,
            rank,
            size: world_size,
            launcher: launcher.to_string(),
            library,
            timeout,
            broken: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        };
        if world_size != size {
            let e = Error::config(
                "launch",
                format!(
                    "{launcher} started {size} processes but MPI sees a world of {world_size}: the launcher and {} do not match (an srun without --mpi=pmix, or a launcher of another MPI: {} names the library to use)",
                    me.library,
                    LIBMPI_ENV
                ),
            );
            let _ = me.finish();
            return Err(e);
        }
        Ok(me)
    }

    fn check(&self, what: &str) -> Result<()> {
        match self.broken.load(Ordering::SeqCst) || self.finished.load(Ordering::SeqCst) {
            true => Err(self.error(what, "MPI can no longer be used after an earlier collective failed")),
            false => Ok(()),
        }
    }

    fn error(&self, what: &str, reason: &str) -> Error {
        Error::Distributed {
            rank: self.rank,
            size: self.size,
            reason: format!("{what} ({}): {reason}", self.launcher),
        }
    }

    /// Polls `request` until it completes or the timeout passes. On a timeout the request's
    /// buffers belong to MPI for good: the caller must leak them.
    fn wait<H: Handle>(&self, api: &Api<H>, mut request: H, what: &str) -> Result<()> {
        let start = Instant::now();
        let mut polls = 0u64;
        loop {
            let mut done: c_int = 0;
            // SAFETY: an active request from this library
            unsafe { (api.test)(&mut request, &mut done, H::status_ignore()) };
            if done != 0 {
                return Ok(());
            }
            if start.elapsed() > self.timeout {
                self.broken.store(true, Ordering::SeqCst);
                return Err(self.error(
                    what,
                    &format!(
                        "not completed by every rank within {:.0} s ({}): another rank has died or hangs (its own output says why). The run's last checkpoint is intact: `pretrain --continue` resumes it, with the same or another number of processes",
                        self.timeout.as_secs_f64(),
                        super::TIMEOUT_ENV
                    ),
                ));
            }
            // progress happens inside MPI_Test: poll fast at first, then give the core away
            polls += 1;
            if polls < 2000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }

    fn count(&self, what: &str, n: usize) -> Result<c_int> {
        c_int::try_from(n).map_err(|_| self.error(what, &format!("{n} values is too many for one collective")))
    }

    /// Element-wise sum over the ranks: a reduce-scatter of `values` padded to a multiple of the
    /// world size, then an all-gather of the reduced blocks.
    fn sum<T: Element, H: Handle>(&self, api: &Api<H>, what: &str, values: &mut [T]) -> Result<()> {
        self.check(what)?;
        let block = values.len().div_ceil(self.size);
        let count = self.count(what, block)?;
        let mut send = vec![T::default(); block * self.size];
        send[..values.len()].copy_from_slice(values);
        let mut mine = vec![T::default(); block];
        let mut all = vec![T::default(); block * self.size];
        let dtype = T::datatype(api);
        let mut request = H::null();
        // SAFETY: the buffers hold block·size and block elements of `dtype`, and outlive the
        // request (leaked below if it does not complete)
        unsafe {
            (api.reduce_scatter_block)(
                send.as_ptr().cast::<c_void>(),
                mine.as_mut_ptr().cast::<c_void>(),
                count,
                dtype,
                api.sum,
                api.world,
                &mut request,
            )
        };
        if let Err(e) = self.wait(api, request, what) {
            std::mem::forget((send, mine, all));
            return Err(e);
        }
        if let Err(e) = self.all_gather(api, what, &mine, &mut all) {
            std::mem::forget((send, mine, all));
            return Err(e);
        }
        let n = values.len();
        values.copy_from_slice(&all[..n]);
        Ok(())
    }

    /// Every rank's `mine` (of one length), concatenated in rank order.
    fn gather<T: Element, H: Handle>(&self, api: &Api<H>, what: &str, mine: &[T]) -> Result<Vec<T>> {
        self.check(what)?;
        let send = mine.to_vec();
        let mut all = vec![T::default(); mine.len() * self.size];
        if let Err(e) = self.all_gather(api, what, &send, &mut all) {
            std::mem::forget((send, all));
            return Err(e);
        }
        Ok(all)
    }

    /// Gathers every rank's `mine` into `all` (`mine.len()` × size). On an error the buffers
    /// belong to MPI for good: the caller must leak them.
    fn all_gather<T: Element, H: Handle>(&self, api: &Api<H>, what: &str, mine: &[T], all: &mut [T]) -> Result<()> {
        let count = self.count(what, mine.len())?;
        let dtype = T::datatype(api);
        let mut request = H::null();
        // SAFETY: `mine` holds count elements of `dtype` and `all` count·size; the caller keeps
        // both alive until the request completes (or leaks them)
        unsafe {
            (api.all_gather)(
                mine.as_ptr().cast::<c_void>(),
                count,
                dtype,
                all.as_mut_ptr().cast::<c_void>(),
                count,
                dtype,
                api.world,
                &mut request,
            )
        };
        self.wait(api, request, what)
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn sum_f32(&self, what: &str, values: &mut [f32]) -> Result<()> {
        with_api!(self, api => self.sum(api, what, values))
    }
    fn sum_f64(&self, what: &str, values: &mut [f64]) -> Result<()> {
        with_api!(self, api => self.sum(api, what, values))
    }
    fn gather_bytes(&self, what: &str, mine: &[u8]) -> Result<Vec<u8>> {
        with_api!(self, api => self.gather(api, what, mine))
    }
    fn finish(&self) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) || self.finished.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // SAFETY: MPI was initialised by `join`, and no request is pending
        let code = with_api!(self, api => unsafe { (api.finalize)() });
        match code {
            0 => Ok(()),
            c => Err(self.error("MPI_Finalize", &format!("failed (code {c})"))),
        }
    }
    fn abort_job(&self, code: i32) {
        // SAFETY: MPI was initialised by `join`; MPI_Abort ends every process of the world
        with_api!(self, api => unsafe { (api.abort)(api.world, code) });
    }
    fn describe(&self) -> String {
        let abi = match self.loaded {
            Loaded::Open { .. } => "OpenMPI",
            Loaded::Mpich { .. } => "MPICH",
        };
        format!(
            "{} processes, {} with {} ({abi} ABI)",
            self.size, self.launcher, self.library
        )
    }
}
