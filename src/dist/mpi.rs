//! The MPI backend: the system's OpenMPI library (`libmpi.so.40`, Debian's `libopenmpi3`),
//! opened at run time rather than linked, so that the default build needs neither OpenMPI's
//! headers nor libclang, and one binary runs alone or under `mpirun`. Ten functions and five
//! handles of OpenMPI's ABI are used (its handles are the addresses of exported globals);
//! `ENCODERLAB_LIBMPI` names another library file.
//!
//! Sums are a reduce-scatter then an all-gather (each element reduced at one rank, then copied
//! to all), so every rank holds the same bits, whatever algorithm MPI picks. Every collective
//! is non-blocking and polled against the collective timeout: a peer that died or hangs gives
//! an error naming the collective instead of a hang.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

use super::Communicator;
use crate::error::{Error, Result};

/// The environment variable naming the MPI library file to open.
pub const LIBMPI_ENV: &str = "ENCODERLAB_LIBMPI";

/// OpenMPI's shared library names, newest ABI first.
const LIBRARY_NAMES: [&str; 2] = ["libmpi.so.40", "libmpi.so"];

/// An OpenMPI handle (communicator, datatype, operation, request): a pointer.
type Handle = *mut c_void;

type InitThread = unsafe extern "C" fn(*mut c_int, *mut *mut *mut c_char, c_int, *mut c_int) -> c_int;
type Finalize = unsafe extern "C" fn() -> c_int;
type Abort = unsafe extern "C" fn(Handle, c_int) -> c_int;
type CommInt = unsafe extern "C" fn(Handle, *mut c_int) -> c_int;
type ReduceScatterBlock =
    unsafe extern "C" fn(*const c_void, *mut c_void, c_int, Handle, Handle, Handle, *mut Handle) -> c_int;
type AllGather =
    unsafe extern "C" fn(*const c_void, c_int, Handle, *mut c_void, c_int, Handle, Handle, *mut Handle) -> c_int;
type Test = unsafe extern "C" fn(*mut Handle, *mut c_int, *mut c_void) -> c_int;

/// MPI_THREAD_FUNNELED: only the main thread calls MPI (the CPU kernels' threads never do).
const THREAD_FUNNELED: c_int = 1;

/// The functions and handles used, resolved once.
struct Api {
    finalize: Finalize,
    abort: Abort,
    reduce_scatter_block: ReduceScatterBlock,
    all_gather: AllGather,
    test: Test,
    world: Handle,
    float: Handle,
    double: Handle,
    byte: Handle,
    sum: Handle,
    /// Keeps the library loaded (its functions are called through the pointers above).
    _library: Library,
}

/// The datatypes the collectives carry.
trait Element: Copy + Default {
    fn datatype(api: &Api) -> Handle;
}
impl Element for f32 {
    fn datatype(api: &Api) -> Handle {
        api.float
    }
}
impl Element for f64 {
    fn datatype(api: &Api) -> Handle {
        api.double
    }
}
impl Element for u8 {
    fn datatype(api: &Api) -> Handle {
        api.byte
    }
}

/// A process of an MPI world.
pub struct Mpi {
    api: Api,
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

// SAFETY: the handles are addresses of OpenMPI's global objects, valid for the life of the
// loaded library; MPI is initialised with MPI_THREAD_FUNNELED and only the thread that drives
// training calls it (the trainer holds the world for the whole run).
unsafe impl Send for Mpi {}
// SAFETY: as above.
unsafe impl Sync for Mpi {}

fn library_error(path: &str, reason: impl std::fmt::Display) -> Error {
    Error::Tool {
        tool: format!("MPI library {path}"),
        reason: format!(
            "{reason}: a process started by mpirun or srun needs OpenMPI's libmpi.so.40 (Debian: `apt-get install openmpi-bin libopenmpi3`), or {LIBMPI_ENV}=/path/to/libmpi.so.40"
        ),
    }
}

fn open_library() -> Result<(Library, String)> {
    let names: Vec<String> = match std::env::var(LIBMPI_ENV) {
        Ok(path) => vec![path],
        Err(_) => LIBRARY_NAMES.iter().map(|s| s.to_string()).collect(),
    };
    let mut last = String::new();
    for name in &names {
        // RTLD_GLOBAL: OpenMPI's own plugins, which it opens in turn, resolve its symbols
        // SAFETY: loading OpenMPI runs its library constructors, which have no preconditions
        match unsafe { Library::open(Some(name), RTLD_NOW | RTLD_GLOBAL) } {
            Ok(lib) => return Ok((lib, name.clone())),
            Err(e) => last = e.to_string(),
        }
    }
    Err(library_error(&names.join(" or "), last))
}

/// A function or global of the library, by name.
///
/// # Safety
/// `T` must be the symbol's real type (a function pointer of its C signature, or a pointer).
unsafe fn symbol<T: Copy>(lib: &Library, path: &str, name: &str) -> Result<T> {
    // SAFETY: the caller gives the symbol's type
    unsafe { lib.get::<T>(name.as_bytes()) }.map(|s| *s).map_err(|e| {
        library_error(
            path,
            format!("has no `{name}` ({e}); is it OpenMPI? (MPICH-family libraries are not supported)"),
        )
    })
}

/// The address of an exported global (an OpenMPI predefined handle).
fn global(lib: &Library, path: &str, name: &str) -> Result<Handle> {
    // SAFETY: reading a symbol's address, not its value
    let address: *mut c_void = unsafe { symbol::<*mut c_void>(lib, path, name) }?;
    Ok(address)
}

impl Mpi {
    /// Opens OpenMPI, initialises it and joins the launcher's world, which must have `size`
    /// processes (what the launcher's variables said).
    pub fn join(size: usize, launcher: &str, timeout: Duration) -> Result<Self> {
        let (lib, path) = open_library()?;
        // SAFETY (every `symbol` below): the types are the C signatures of OpenMPI's mpi.h
        let api = unsafe {
            let init_thread: InitThread = symbol(&lib, &path, "MPI_Init_thread")?;
            let rank: CommInt = symbol(&lib, &path, "MPI_Comm_rank")?;
            let size_of: CommInt = symbol(&lib, &path, "MPI_Comm_size")?;
            let world = global(&lib, &path, "ompi_mpi_comm_world")?;
            let mut provided: c_int = 0;
            let code = init_thread(null_mut(), null_mut(), THREAD_FUNNELED, &mut provided);
            if code != 0 {
                return Err(library_error(&path, format!("MPI_Init_thread failed (code {code})")));
            }
            let (mut r, mut s) = (0, 0);
            rank(world, &mut r);
            size_of(world, &mut s);
            let api = Api {
                finalize: symbol(&lib, &path, "MPI_Finalize")?,
                abort: symbol(&lib, &path, "MPI_Abort")?,
                reduce_scatter_block: symbol(&lib, &path, "MPI_Ireduce_scatter_block")?,
                all_gather: symbol(&lib, &path, "MPI_Iallgather")?,
                test: symbol(&lib, &path, "MPI_Test")?,
                world,
                float: global(&lib, &path, "ompi_mpi_float")?,
                double: global(&lib, &path, "ompi_mpi_double")?,
                byte: global(&lib, &path, "ompi_mpi_byte")?,
                sum: global(&lib, &path, "ompi_mpi_op_sum")?,
                _library: lib,
            };
            (api, r as usize, s as usize)
        };
        let (api, rank, world_size) = api;
        let me = Self {
            api,
            rank,
            size: world_size,
            launcher: launcher.to_string(),
            library: path,
            timeout,
            broken: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        };
        if world_size != size {
            let e = Error::config(
                "launch",
                format!(
                    "{launcher} started {size} processes but MPI sees a world of {world_size}: the launcher and {} do not match (an srun without --mpi=pmix, or an mpirun of another MPI)",
                    me.library
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
    fn wait(&self, mut request: Handle, what: &str) -> Result<()> {
        let start = Instant::now();
        let mut polls = 0u64;
        loop {
            let mut done: c_int = 0;
            // SAFETY: an active request from this library; MPI_STATUS_IGNORE is NULL in OpenMPI
            unsafe { (self.api.test)(&mut request, &mut done, null_mut()) };
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

    /// Element-wise sum over the ranks: a reduce-scatter of `values` padded to a multiple of the
    /// world size, then an all-gather of the reduced blocks.
    fn sum<T: Element>(&self, what: &str, values: &mut [T]) -> Result<()> {
        self.check(what)?;
        let block = values.len().div_ceil(self.size);
        let count = c_int::try_from(block)
            .map_err(|_| self.error(what, &format!("{} values is too many for one collective", values.len())))?;
        let mut send = vec![T::default(); block * self.size];
        send[..values.len()].copy_from_slice(values);
        let mut mine = vec![T::default(); block];
        let mut all = vec![T::default(); block * self.size];
        let dtype = T::datatype(&self.api);
        let mut request: Handle = null_mut();
        // SAFETY: the buffers hold block·size and block elements of `dtype`, and outlive the
        // request (leaked below if it does not complete)
        unsafe {
            (self.api.reduce_scatter_block)(
                send.as_ptr().cast(),
                mine.as_mut_ptr().cast(),
                count,
                dtype,
                self.api.sum,
                self.api.world,
                &mut request,
            )
        };
        if let Err(e) = self.wait(request, what) {
            std::mem::forget((send, mine, all));
            return Err(e);
        }
        // SAFETY: as above, `mine` holds block elements and `all` block·size
        unsafe {
            (self.api.all_gather)(
                mine.as_ptr().cast(),
                count,
                dtype,
                all.as_mut_ptr().cast(),
                count,
                dtype,
                self.api.world,
                &mut request,
            )
        };
        if let Err(e) = self.wait(request, what) {
            std::mem::forget((send, mine, all));
            return Err(e);
        }
        let n = values.len();
        values.copy_from_slice(&all[..n]);
        Ok(())
    }
}

impl Mpi {
    /// Every rank's `mine` (of one length), concatenated in rank order.
    fn gather<T: Element>(&self, what: &str, mine: &[T]) -> Result<Vec<T>> {
        self.check(what)?;
        let count = c_int::try_from(mine.len())
            .map_err(|_| self.error(what, &format!("{} values is too many for one collective", mine.len())))?;
        let send = mine.to_vec();
        let mut all = vec![T::default(); mine.len() * self.size];
        let dtype = T::datatype(&self.api);
        let mut request: Handle = null_mut();
        // SAFETY: `send` holds count elements of `dtype` and `all` count·size; both outlive the
        // request (leaked below if it does not complete)
        unsafe {
            (self.api.all_gather)(
                send.as_ptr().cast(),
                count,
                dtype,
                all.as_mut_ptr().cast(),
                count,
                dtype,
                self.api.world,
                &mut request,
            )
        };
        if let Err(e) = self.wait(request, what) {
            std::mem::forget((send, all));
            return Err(e);
        }
        Ok(all)
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
        self.sum(what, values)
    }
    fn sum_f64(&self, what: &str, values: &mut [f64]) -> Result<()> {
        self.sum(what, values)
    }
    fn gather_bytes(&self, what: &str, mine: &[u8]) -> Result<Vec<u8>> {
        self.gather(what, mine)
    }
    fn finish(&self) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) || self.finished.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // SAFETY: MPI was initialised by `join`, and no request is pending
        let code = unsafe { (self.api.finalize)() };
        match code {
            0 => Ok(()),
            c => Err(self.error("MPI_Finalize", &format!("failed (code {c})"))),
        }
    }
    fn abort_job(&self, code: i32) {
        // SAFETY: MPI was initialised by `join`; MPI_Abort ends every process of the world
        unsafe { (self.api.abort)(self.api.world, code) };
    }
    fn describe(&self) -> String {
        format!("{} processes, {} with {}", self.size, self.launcher, self.library)
    }
}
