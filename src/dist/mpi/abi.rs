//! The system's MPI library, opened at run time: its file, its ABI and the ten functions and
//! five handles the collectives use. Two ABIs cover the MPI libraries of clusters:
//! - OpenMPI's (`libmpi.so.40`): handles are the addresses of exported globals
//!   (`ompi_mpi_comm_world`, …), requests are pointers, `MPI_STATUS_IGNORE` is null;
//! - MPICH's (`libmpich.so.12`, `libmpi.so.12`: MPICH, Intel MPI, Cray MPICH, MVAPICH): handles
//!   are `int`s of fixed values (from MPICH's `mpi.h`), `MPI_STATUS_IGNORE` is 1.
//!
//! The ABI is told by the library's symbols (`ompi_mpi_comm_world` is OpenMPI's).

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

use crate::error::{Error, Result};

/// The environment variable naming the MPI library file to open.
pub const LIBMPI_ENV: &str = "ENCODERLAB_LIBMPI";

/// Library files tried in turn: OpenMPI's first under OpenMPI's `mpirun` and `srun --mpi=pmix`,
/// MPICH-family ones first under a PMI launcher (`mpiexec` of MPICH or Intel MPI).
fn library_names(mpich_first: bool) -> Vec<&'static str> {
    let open = ["libmpi.so.40", "libmpi.so"];
    let mpich = ["libmpich.so.12", "libmpi.so.12"];
    match mpich_first {
        true => mpich.into_iter().chain(open).collect(),
        false => open.into_iter().chain(mpich).collect(),
    }
}

/// A handle of one ABI: a pointer (OpenMPI) or an `int` (MPICH).
pub(super) trait Handle: Copy + 'static {
    /// An unset request.
    fn null() -> Self;
    /// `MPI_STATUS_IGNORE`.
    fn status_ignore() -> *mut c_void;
}

impl Handle for *mut c_void {
    fn null() -> Self {
        null_mut()
    }
    fn status_ignore() -> *mut c_void {
        null_mut()
    }
}

impl Handle for c_int {
    fn null() -> Self {
        0
    }
    fn status_ignore() -> *mut c_void {
        // MPICH's `(MPI_Status *)1`
        std::ptr::without_provenance_mut(1)
    }
}

type InitThread = unsafe extern "C" fn(*mut c_int, *mut *mut *mut c_char, c_int, *mut c_int) -> c_int;
type Finalize = unsafe extern "C" fn() -> c_int;
type Abort<H> = unsafe extern "C" fn(H, c_int) -> c_int;
type CommInt<H> = unsafe extern "C" fn(H, *mut c_int) -> c_int;
type ReduceScatterBlock<H> = unsafe extern "C" fn(*const c_void, *mut c_void, c_int, H, H, H, *mut H) -> c_int;
type AllGather<H> = unsafe extern "C" fn(*const c_void, c_int, H, *mut c_void, c_int, H, H, *mut H) -> c_int;
type Test<H> = unsafe extern "C" fn(*mut H, *mut c_int, *mut c_void) -> c_int;

/// MPI_THREAD_FUNNELED (1 in both ABIs): only the main thread calls MPI (the CPU kernels'
/// threads never do).
const THREAD_FUNNELED: c_int = 1;

/// The functions and handles used, resolved once, in the handles of ABI `H`.
pub(super) struct Api<H> {
    pub finalize: Finalize,
    pub abort: Abort<H>,
    pub reduce_scatter_block: ReduceScatterBlock<H>,
    pub all_gather: AllGather<H>,
    pub test: Test<H>,
    pub world: H,
    pub float: H,
    pub double: H,
    pub byte: H,
    pub sum: H,
    init_thread: InitThread,
    rank: CommInt<H>,
    size: CommInt<H>,
}

impl<H: Handle> Api<H> {
    /// Initialises MPI; returns this process's rank and the world's size.
    pub fn init(&self, path: &str) -> Result<(usize, usize)> {
        let mut provided: c_int = 0;
        // SAFETY: MPI_Init_thread with null argc/argv is allowed by the standard; called once
        let code = unsafe { (self.init_thread)(null_mut(), null_mut(), THREAD_FUNNELED, &mut provided) };
        if code != 0 {
            return Err(library_error(path, format!("MPI_Init_thread failed (code {code})")));
        }
        let (mut r, mut s) = (0, 0);
        // SAFETY: MPI is initialised; the world handle is this library's
        unsafe {
            (self.rank)(self.world, &mut r);
            (self.size)(self.world, &mut s);
        }
        Ok((r.max(0) as usize, s.max(0) as usize))
    }
}

/// The library, open, with its API in its ABI.
pub(super) enum Loaded {
    /// OpenMPI.
    Open {
        api: Api<*mut c_void>,
        /// Keeps the library loaded (its functions are called through `api`'s pointers).
        _library: Library,
    },
    /// MPICH and its derivatives.
    Mpich { api: Api<c_int>, _library: Library },
}

pub(super) fn library_error(path: &str, reason: impl std::fmt::Display) -> Error {
    Error::Tool {
        tool: format!("MPI library {path}"),
        reason: format!(
            "{reason}: a process started by mpirun, mpiexec or srun needs the MPI library of its launcher: OpenMPI's libmpi.so.40 (Debian: `apt-get install openmpi-bin`) or an MPICH-family libmpich.so.12 / libmpi.so.12, or {LIBMPI_ENV}=/path/to/the/library"
        ),
    }
}

/// A function or global of the library, by name.
///
/// # Safety
/// `T` must be the symbol's real type (a function pointer of its C signature, or a pointer).
unsafe fn symbol<T: Copy>(lib: &Library, path: &str, name: &str) -> Result<T> {
    // SAFETY: the caller gives the symbol's type
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| library_error(path, format!("has no `{name}` ({e}): not an MPI library")))
}

/// The C signatures of both ABIs' `mpi.h`, resolved from `lib` with the handles `handles`
/// (world, float, double, byte, sum).
///
/// # Safety
/// `H` must be the library's handle type.
unsafe fn api<H: Handle>(lib: &Library, path: &str, handles: [H; 5]) -> Result<Api<H>> {
    let [world, float, double, byte, sum] = handles;
    // SAFETY: the types are the C signatures of mpi.h in the ABI of `H`
    unsafe {
        Ok(Api {
            finalize: symbol(lib, path, "MPI_Finalize")?,
            abort: symbol(lib, path, "MPI_Abort")?,
            reduce_scatter_block: symbol(lib, path, "MPI_Ireduce_scatter_block")?,
            all_gather: symbol(lib, path, "MPI_Iallgather")?,
            test: symbol(lib, path, "MPI_Test")?,
            init_thread: symbol(lib, path, "MPI_Init_thread")?,
            rank: symbol(lib, path, "MPI_Comm_rank")?,
            size: symbol(lib, path, "MPI_Comm_size")?,
            world,
            float,
            double,
            byte,
            sum,
        })
    }
}

/// MPICH's handles, from its `mpi.h` (MPICH 3 and 4, Intel MPI and Cray MPICH share them).
const MPICH_HANDLES: [c_int; 5] = [
    0x4400_0000,          // MPI_COMM_WORLD
    0x4c00_040a,          // MPI_FLOAT
    0x4c00_080b,          // MPI_DOUBLE
    0x4c00_010d,          // MPI_BYTE
    0x5800_0003_u32 as _, // MPI_SUM
];

/// Opens the MPI library (`ENCODERLAB_LIBMPI`, else the usual names, MPICH's first when
/// `mpich_first`) and resolves its API in its ABI. Returns it with the file's name.
pub(super) fn open(mpich_first: bool) -> Result<(Loaded, String)> {
    let names: Vec<String> = match std::env::var(LIBMPI_ENV) {
        Ok(path) => vec![path],
        Err(_) => library_names(mpich_first).into_iter().map(String::from).collect(),
    };
    let mut last = String::new();
    for name in &names {
        // RTLD_GLOBAL: the plugins an MPI library opens in turn resolve its symbols
        // SAFETY: loading the library runs its constructors, which have no preconditions
        let lib = match unsafe { Library::open(Some(name), RTLD_NOW | RTLD_GLOBAL) } {
            Ok(lib) => lib,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        // SAFETY (both arms): the handle types are the ABIs' own
        let loaded = unsafe {
            match lib.get::<*mut c_void>(b"ompi_mpi_comm_world") {
                Ok(_) => {
                    let global = |n: &str| symbol::<*mut c_void>(&lib, name, n);
                    let handles = [
                        global("ompi_mpi_comm_world")?,
                        global("ompi_mpi_float")?,
                        global("ompi_mpi_double")?,
                        global("ompi_mpi_byte")?,
                        global("ompi_mpi_op_sum")?,
                    ];
                    Loaded::Open {
                        api: api(&lib, name, handles)?,
                        _library: lib,
                    }
                }
                Err(_) => Loaded::Mpich {
                    api: api(&lib, name, MPICH_HANDLES)?,
                    _library: lib,
                },
            }
        };
        return Ok((loaded, name.clone()));
    }
    Err(library_error(&names.join(" or "), last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_decides_which_library_is_tried_first() {
        assert_eq!(library_names(false)[0], "libmpi.so.40");
        assert_eq!(library_names(true)[0], "libmpich.so.12");
        assert_eq!(library_names(true).len(), 4);
    }
}
