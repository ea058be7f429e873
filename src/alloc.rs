//! Allocator tuning for the binaries (which use mimalloc): candle allocates a fresh buffer for
//! every op, and an allocator that hands freed pages back to the kernel makes each step fault
//! and zero them again (measured: ~20 % of a CPU training step in `clear_page`).

/// mimalloc's `mi_option_purge_delay` (mimalloc.h, v2.1+): milliseconds before freed memory is
/// returned to the OS; −1 keeps it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process instead of returning it to the OS. Call once, first thing
/// in `main`; an explicit `MIMALLOC_PURGE_DELAY` in the environment wins.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option of the allocator; mimalloc documents it as safe to
        // call at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
