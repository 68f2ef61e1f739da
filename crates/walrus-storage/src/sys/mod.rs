//! The one place in the workspace with `unsafe` code: libc calls, io_uring submissions and raw
//! memory mappings, each wrapped in a safe function whose callers cannot break its invariants.

pub(crate) mod fs;
pub(crate) mod mmap;
pub(crate) mod uring;
