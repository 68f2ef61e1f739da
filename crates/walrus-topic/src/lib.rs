//! Topics, writers, readers, the persisted cursor index and recovery for the Walrus
//! write-ahead log.
//!
//! Users want the `walrus-rust` crate, which re-exports the public part of this one. The
//! layers below are `walrus-alloc` (blocks and file deletion) and `walrus-storage` (bytes).
#![forbid(unsafe_code)]

mod append;
mod block;
mod claim;
mod config;
mod cursor_store;
mod deferred_cursors;
mod durability;
mod engine;
mod error;
mod format;
mod frames;
mod inspect;
mod legacy;
mod log;
mod namespace;
mod prepare;
mod publish;
mod reader;
mod recovery;
mod seal;
mod stats;
mod sync;
mod telemetry;
mod topic;
mod topic_record;
mod wal_index;
mod walrus;

pub use config::{CursorSync, EngineConfig, FsyncSchedule, ReadConsistency};
pub use engine::Engine;

/// The on-disk format version this build writes (docs/FORMAT.md).
pub const FORMAT_VERSION: u8 = walrus_storage::FormatVersion::CURRENT as u8;
pub use error::{Error, Result};
pub use format::LEGACY_DIR_NAME;
pub use format::{
    BATCH_BYTES_MAX, BATCH_ENTRIES_MAX, ENTRY_BYTES_MAX, META_BYTES_MAX, SEAL_BYTES,
    TOPIC_NAME_BYTES_MAX,
};
pub use inspect::{CursorTarget, FileInfo, PurgeReport, TopicInfo};
pub use legacy::{
    ImportOptions, ImportPlan, ImportProgress, ProgressHook, TopicImportPlan, has_pending_import,
    legacy_files, plan_import,
};
pub use log::TopicLog;
pub use namespace::{
    __clear_thread_namespace_for_tests, __current_thread_namespace_for_tests,
    __set_thread_namespace_for_tests, DEFAULT_DATA_DIR, sanitize_key,
};
pub use reader::ReadEntry;
pub use recovery::{Finding, FindingKind};
pub use stats::Stats;
pub use wal_index::{BlockPos, WalIndex};
pub use walrus::{Entry, Walrus, WalrusBuilder, disable_fd_backend, enable_fd_backend};
