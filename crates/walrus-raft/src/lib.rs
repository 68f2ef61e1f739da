//! Openraft log storage on Walrus topic logs.
//!
//! [`WalrusLogStore`] implements openraft's [`RaftLogStorage`](openraft::storage::RaftLogStorage)
//! (and [`WalrusLogReader`] its `RaftLogReader`) for any openraft type configuration whose
//! types are serde-serializable (openraft's `serde` feature, which this crate turns on).
//! [`LogStateMachine`] and [`TypeConfig`] are a small replicated log built on it, and the
//! [`service`] module runs it: nodes that each hold several Raft groups on one Walrus
//! instance, a client that finds the leaders, an in-process network for tests and an HTTP
//! transport between processes (cargo feature `http`, on by default; the `replicated_log`
//! examples run it).
//!
//! # Mapping
//!
//! - **One topic per Raft group**: group `g` keeps its log in topic `raft-<g>`
//!   ([`topic_name`]) of a [`Walrus`](walrus_rust::Walrus) instance; one instance per node
//!   holds the logs of all the node's groups, and shares its group commit between them.
//!   ([`LogStateMachine::open`] keeps the group's snapshots beside it, in topic
//!   `raft-snapshot-<g>`: [`snapshot_topic_name`].)
//! - **Log index = position**: the entry of Raft log index `i` is the entry at position `i` of
//!   the topic ([`TopicLog`](walrus_rust::TopicLog) positions are contiguous and start at 0).
//!   Purging up to `i` is `purge_before(i + 1)`; truncating after `i` is
//!   `truncate_from(i + 1)`. After a purge past the end (as when a snapshot is installed) the
//!   topic's next position is the index after the purged one, so openraft's next append lands
//!   where it belongs; an append past the end of a log that holds no entry at all moves the
//!   next position there with `purge_before`. Any other mismatch (a hole, an overwrite
//!   without truncation) is an `InvalidInput` error: the log is never silently rewritten.
//! - **Entries** are encoded with the crate's codec: a version byte, then
//!   [postcard](https://docs.rs/postcard) (why: see the `codec` module docs), one entry per
//!   topic entry, checked on read to carry the index of their position.
//! - **The meta record** of the topic (`TopicLog::set_meta`: at most `META_BYTES_MAX` bytes,
//!   durable when written, atomic across a crash) holds the vote, the committed log id and
//!   the last purged log id, encoded with the same codec. `save_vote` returns once it is
//!   durable. `purge` writes the purged log id there first, then purges the topic; opening
//!   the store finishes a purge a crash interrupted. The committed log id is written at most
//!   every [`WalrusLogStore::committed_interval`], and only once the group commit covers its
//!   entry (a restart re-applies the log up to it).
//!
//! # Durability
//!
//! `append` returns once the entries are readable (appended in crash-atomic batches of at
//! most `BATCH_ENTRIES_MAX` entries) and calls openraft's flush callback from
//! `TopicLog::on_durable`: once the group commit's fdatasync covers the last entry. No append
//! fsyncs by itself, so open the instance with `FsyncSchedule::Milliseconds(n)` (a small `n`:
//! it bounds the flush latency); under `SyncEach` every append blocks on its sync, and under
//! `NoFsync` callbacks wait for someone to call `sync`. The writes that must be durable when
//! they return (the meta record, truncation, purge) run on Tokio's blocking threads when the
//! store runs in a Tokio runtime.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use openraft::storage::RaftLogStorage;
//! use walrus_raft::{TypeConfig, WalrusLogStore};
//! use walrus_rust::{FsyncSchedule, Walrus};
//!
//! # let dir = tempfile::tempdir()?;
//! let wal = Walrus::builder()
//!     .data_dir(dir.path().into())
//!     .fsync_schedule(FsyncSchedule::Milliseconds(2))
//!     .build()?;
//! let mut group_7 = WalrusLogStore::<TypeConfig>::open(&wal, 7)?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let state = runtime.block_on(group_7.get_log_state())?;
//! assert_eq!(state.last_log_id, None);
//! assert_eq!(group_7.topic_log().name(), "raft-7");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod log_reader;
mod log_store;
mod meta;
pub mod service;
mod snapshot_log;
mod state_machine;
mod types;

pub use log_reader::WalrusLogReader;
pub use log_store::{WalrusLogStore, topic_name};
pub use snapshot_log::snapshot_topic_name;
pub use state_machine::LogStateMachine;
pub use types::{Request, RequestId, Response, TypeConfig};
