//! Byte-level storage for the Walrus write-ahead log.
//!
//! Most users want the `walrus-rust` crate, which builds topics, cursors and recovery on top of
//! this one. Depend on `walrus-storage` directly to build a log of your own: it gives you
//!
//! - [`Storage`] and [`Segment`], one small interface over a directory of pre-sized files, with
//!   the [`FdStorage`] (`pread`/`pwrite`, io_uring for batches on Linux) and [`MmapStorage`]
//!   backends, plus `MemStorage`, `FaultyStorage` and `shutdown_filesystem` (a real power
//!   cut for tests) behind the `testing` feature;
//! - the entry framing ([`encode_frame`], [`decode_frame`], [`Scanner`]): a versioned,
//!   checksummed record that tells a zeroed or torn tail apart from corruption in the middle.
//!
//! See `examples/custom_log.rs` for a complete append-only log in about a hundred lines.
#![deny(unsafe_code)]

mod checksum;
mod dir;
mod error;
mod fd;
mod format;
mod frame;
mod lock;
mod mmap;
mod release;
mod scan;
mod segment;
#[expect(
    unsafe_code,
    reason = "the only module allowed to call libc, io_uring and raw mappings"
)]
mod sys;

#[cfg(any(test, feature = "testing"))]
mod faulty;
#[cfg(any(test, feature = "testing"))]
mod mem;
#[cfg(any(test, feature = "testing"))]
mod shutdown;
#[cfg(any(test, feature = "testing"))]
mod tmpfs;

pub use checksum::frame_checksum;
pub use dir::{DEFAULT_FILE_MODE, create_dir_all, dir_mode};
pub use error::{Error, Result};
pub use fd::{FdOptions, FdStorage, io_uring_available};
pub use format::{
    FRAME_ALIGN, FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_PAYLOAD_BYTES_MAX, FormatVersion,
};
pub use frame::{
    Decoded, Frame, FrameError, FrameHeader, decode_frame, decode_header, encode_frame, frame_len,
    read_u16, read_u32, read_u64, stored_header, verify_payload,
};
pub use lock::{DirLock, LOCK_FILE_NAME};
pub use mmap::MmapStorage;
pub use release::release_in_background;
pub use scan::{ScanEnd, ScanItem, Scanner, resync};
pub use segment::{
    BackendKind, ReadAt, Segment, Storage, WriteAt, open_storage, open_storage_with_mode,
};

#[cfg(any(test, feature = "testing"))]
pub use faulty::{Fault, FaultPlan, FaultyStorage, OpKind, PowerLoss, TearFill};
#[cfg(any(test, feature = "testing"))]
pub use mem::MemStorage;
#[cfg(any(test, feature = "testing"))]
pub use shutdown::shutdown_filesystem;
#[cfg(any(test, feature = "testing"))]
pub use tmpfs::{SmallTmpfs, small_tmpfs};
