//! The allocator's settings, made once at the start of every binary.
//!
//! Every binary allocates with mimalloc (`#[global_allocator]` in its `main.rs`). mimalloc
//! keeps memory that was freed for a while before it gives it back to the system, in case it
//! is needed again: by default 1 s for a page, and ten times that for the larger areas it
//! reserves. A stage frees a part's decoded events, rows and files at once when it ends, and
//! the next part allocates as much again, so what was freed in the last seconds stays
//! resident beside what is in use. The 1,000,000-event upload peaked at 246,944 to
//! 298,516 KB in sixteen runs, against 224,696 to 247,644 KB in nine with memory given
//! back after 100 ms, in about the same time (docs/benchmarks.md). After 10 ms (the default
//! of mimalloc 2) the peak was lower still, but the demo's stage workers took about a tenth
//! more CPU, in faults on memory given back and taken again. A Lambda function's memory is
//! what it is billed for and what it may not exceed, so the functions keep the lower peak
//! as well.

use std::os::raw::c_long;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (`mimalloc.h`; the Rust bindings name
/// no constant for it). The same position in mimalloc 2 and 3.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the allocator before it is given back, in milliseconds.
/// Immediately (0) cost the upload about a third more time, in faults on memory given back
/// and taken again.
pub const FREED_MEMORY_KEPT_MILLIS: c_long = 100;

/// The variable through which mimalloc takes the same setting from the environment.
const PURGE_DELAY_VARIABLE: &str = "MIMALLOC_PURGE_DELAY";

/// Applies the settings above, unless the environment sets them for mimalloc itself
/// (`MIMALLOC_PURGE_DELAY`, read by mimalloc when the process starts): that value stays.
/// Call it first thing in `main`, before the work starts; it changes mimalloc's settings
/// whether or not mimalloc is the global allocator.
pub fn configure() {
    if let Some(millis) = purge_delay_to_set(std::env::var_os(PURGE_DELAY_VARIABLE).as_deref()) {
        // SAFETY: `mi_option_set` only stores the value; any option and value are valid,
        // and mimalloc reads this one each time it decides what to give back.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, millis) }
    }
}

/// What [`configure`] sets, given the environment's `MIMALLOC_PURGE_DELAY`.
fn purge_delay_to_set(environment: Option<&std::ffi::OsStr>) -> Option<c_long> {
    match environment {
        Some(_) => None,
        None => Some(FREED_MEMORY_KEPT_MILLIS),
    }
}

/// The setting mimalloc holds now, to check that [`configure`] reached it.
pub fn freed_memory_kept_millis() -> c_long {
    // SAFETY: reading an option has no precondition.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::{FREED_MEMORY_KEPT_MILLIS, purge_delay_to_set};

    #[test]
    fn a_delay_the_environment_gives_mimalloc_is_left_as_it_is() {
        assert_eq!(purge_delay_to_set(None), Some(FREED_MEMORY_KEPT_MILLIS));
        assert_eq!(purge_delay_to_set(Some("1000".as_ref())), None);
        assert_eq!(purge_delay_to_set(Some("".as_ref())), None);
    }
}
