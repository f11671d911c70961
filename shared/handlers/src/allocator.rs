//! The allocator's settings, made once at the start of every binary.
//!
//! Every binary allocates with mimalloc (`#[global_allocator]` in its `main.rs`). mimalloc
//! keeps memory that was freed for a while before it gives it back to the system, in case it
//! is needed again: by default 1 s for a page, and ten times that for the larger areas it
//! reserves. A stage frees a part's decoded events, rows and files at once when it ends, and
//! the next part allocates as much again, so what was freed in the last seconds stays
//! resident beside what is in use: the 1,000,000-event upload peaked at 264,160 to 298,516 KB
//! in four runs, against 203,788 to 235,444 KB with memory given back after 10 ms (the
//! default of mimalloc 2), in about the same time (docs/benchmarks.md). A Lambda function's memory is what it
//! is billed for and what it may not exceed, so the functions keep the lower peak as well.

use std::os::raw::c_long;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (`mimalloc.h`; the Rust bindings name
/// no constant for it). The same position in mimalloc 2 and 3.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the allocator before it is given back, in milliseconds.
/// Immediately (0) cost the upload about a third more time, in faults on memory given back
/// and taken again.
pub const FREED_MEMORY_KEPT_MILLIS: c_long = 10;

/// Applies the settings above. Call it first thing in `main`, before the work starts; it
/// changes mimalloc's settings whether or not mimalloc is the global allocator.
pub fn configure() {
    // SAFETY: `mi_option_set` only stores the value; any option and value are valid, and
    // mimalloc reads this one each time it decides what to give back.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, FREED_MEMORY_KEPT_MILLIS) }
}

/// The setting mimalloc holds now, to check that [`configure`] reached it.
pub fn freed_memory_kept_millis() -> c_long {
    // SAFETY: reading an option has no precondition.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}
