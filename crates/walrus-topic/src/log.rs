//! `TopicLog`: one topic as a log of numbered positions (the primitives databases and Raft
//! build on): appends that return their position, random access by position, purging a
//! prefix, waiting for the tail, and durability by position.
//!
//! A position is the topic's sequence number: the first entry is 0 and positions are
//! contiguous. Reads by position find the block in the topic's blocks by binary search and
//! the entry in it through a sparse offset index (`index.rs`); durability of positions comes
//! from the group commit's tickets (`durable.rs`); waiting for the tail is a condition
//! variable the writer signals when it publishes (`tail.rs`).

mod durable;
mod index;
mod ops;
mod tail;
mod truncate;

use std::{
    io,
    ops::{Bound, Range, RangeBounds},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;

pub(crate) use durable::{DurableCallback, DurableCallbacks, DurableMarks};
pub(crate) use index::{Positions, SparseIndex, indexed};
pub(crate) use truncate::close_batch;

use crate::{Engine, FsyncSchedule, frames::ReadAhead, topic::Topic};

/// One topic of a [`Walrus`](crate::Walrus) instance seen as a log of positions, from
/// [`Walrus::topic_log`](crate::Walrus::topic_log).
///
/// A position is the topic's sequence number: the first entry ever appended is 0, and every
/// append takes the next one. [`append`](Self::append) and
/// [`append_batch`](Self::append_batch) return them; [`read_at`](Self::read_at) and
/// [`read_range`](Self::read_range) read any entry still held, without moving any cursor,
/// in about the time of one read of a few dozen entries (never a scan from the start);
/// [`purge_before`](Self::purge_before) gives up a prefix.
///
/// **Purge floor and the 0.2.0 cursor.** A topic has one cursor, shared by this handle and the
/// 0.2.0-style reads (`read_next`, `batch_read_for_topic`). Its persisted position is the
/// topic's *purge floor*: positions below it are not readable here ([`first`](Self::first) is
/// at or after it), and the blocks wholly behind it are consumed, so their files are deleted.
/// `purge_before(p)` moves a cursor that is behind `p` to `p` and persists it; a checkpointed
/// 0.2.0 read moves the floor too once its cursor is persisted (entries consumed that way are
/// released, as in walrus-rust 0.2.0). Use either positions and purges, or the cursor, to
/// consume a topic. The floor survives restarts: it is the persisted cursor.
///
/// **Durability.** Appends follow the fsync schedule of the handle that made this log, as
/// `append_for_topic` does. [`durable_position`](Self::durable_position),
/// [`wait_durable`](Self::wait_durable) and [`on_durable`](Self::on_durable) follow the group
/// commit: a position is durable once a sync that started after its append has completed.
///
/// Handles are cheap: clones share the topic, and each has its own read-ahead buffer. A log
/// keeps its instance open like a `Walrus` handle does.
///
/// Runnable examples of every call are in the `walrus_rust::log` module docs.
pub struct TopicLog {
    engine: Arc<Engine>,
    topic: Arc<Topic>,
    schedule: FsyncSchedule,
    ahead: Mutex<ReadAhead>,
}

impl std::fmt::Debug for TopicLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicLog")
            .field("topic", &self.topic.name)
            .field("first", &self.first())
            .field("next_position", &self.next_position())
            .finish()
    }
}

impl Clone for TopicLog {
    fn clone(&self) -> Self {
        Self {
            engine: Arc::clone(&self.engine),
            topic: Arc::clone(&self.topic),
            schedule: self.schedule,
            ahead: Mutex::default(),
        }
    }
}

impl Engine {
    /// The topic `name` as a log whose appends follow `schedule` (what
    /// [`Walrus::topic_log`](crate::Walrus::topic_log) returns, for engines opened directly).
    pub fn topic_log(
        self: &Arc<Self>,
        name: &str,
        schedule: FsyncSchedule,
    ) -> io::Result<TopicLog> {
        TopicLog::open(Arc::clone(self), name, schedule)
    }
}

impl TopicLog {
    pub(crate) fn open(
        engine: Arc<Engine>,
        name: &str,
        schedule: FsyncSchedule,
    ) -> io::Result<Self> {
        let topic = engine.topic_for_log(name)?;
        Ok(Self {
            engine,
            topic,
            schedule,
            ahead: Mutex::default(),
        })
    }

    /// Runs `f` with this handle's read-ahead buffer, or a fresh one while another thread
    /// uses it.
    fn with_ahead<T>(&self, f: impl FnOnce(&mut ReadAhead) -> T) -> T {
        match self.ahead.try_lock() {
            Some(mut ahead) => f(&mut ahead),
            None => f(&mut ReadAhead::default()),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.topic.name
    }

    /// Appends `data` and returns its position. Readers see it when this returns; under
    /// `SyncEach` it is durable too. Same limits and errors as `Walrus::append_for_topic`.
    pub fn append(&self, data: &[u8]) -> io::Result<u64> {
        Ok(self
            .engine
            .append_at(&self.topic.name, data, self.schedule)?)
    }

    /// Appends every entry of `batch` or none of them, also across a crash (as
    /// `Walrus::batch_append_for_topic`), and returns their positions: contiguous, in order.
    /// An empty batch appends nothing and returns an empty range at the next position.
    pub fn append_batch(&self, batch: &[&[u8]]) -> io::Result<Range<u64>> {
        if batch.is_empty() {
            let next = self.next_position();
            return Ok(next..next);
        }
        Ok(self
            .engine
            .batch_append_at(&self.topic.name, batch, self.schedule)?)
    }

    /// The first readable position, or `None` when the log holds no entry (nothing appended
    /// yet, or everything purged). It is the purge floor unless damage took the first
    /// entries after it.
    pub fn first(&self) -> Option<u64> {
        self.topic.positions.first()
    }

    /// The last position appended (`next_position() - 1`), purged or not; `None` before the
    /// first append. After a purge past the end, the position before the one the next append
    /// gets.
    pub fn last(&self) -> Option<u64> {
        self.next_position().checked_sub(1)
    }

    /// The position the next append gets.
    pub fn next_position(&self) -> u64 {
        self.topic.positions.tail.next()
    }

    /// The entry at `position`: `None` if it is below [`first`](Self::first) (purged) or not
    /// appended yet. Verified as every read is (checksum, topic, sequence number); a position
    /// inside the readable range without a valid entry (damaged data) is an `InvalidData`
    /// error naming the file, never skipped.
    pub fn read_at(&self, position: u64) -> io::Result<Option<Vec<u8>>> {
        let read = self.with_ahead(|ahead| self.engine.read_at(&self.topic, position, ahead));
        Ok(read?)
    }

    /// The readable entries in `range` as `(position, payload)`, in order: from `range`'s
    /// start (or [`first`](Self::first) if later) until its end (or the tail), stopping before
    /// an entry that would take the payloads past `max_bytes` (at least one entry when any is
    /// readable). Moves no cursor. Damaged entries are an error, as for
    /// [`read_at`](Self::read_at).
    pub fn read_range(
        &self,
        range: impl RangeBounds<u64>,
        max_bytes: usize,
    ) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        let read = self.with_ahead(|ahead| {
            self.engine
                .read_range(&self.topic, start..end, max_bytes, ahead)
        });
        Ok(read?)
    }

    /// Makes the entries before `position` unreadable and persists that (the purge floor
    /// survives restarts). Blocks wholly behind the floor are consumed, and a segment file
    /// is deleted once all its blocks are, as when a cursor passes them. A 0.2.0-style cursor
    /// behind `position` moves to it. Purging past the end empties the log: the next append
    /// gets `position`. A floor never moves back: purging below it does nothing.
    pub fn purge_before(&self, position: u64) -> io::Result<()> {
        Ok(self.engine.purge_before(&self.topic, position)?)
    }

    /// Removes every entry at `position` and after it, durably when this returns: the next
    /// append gets `position`. A crash at any moment leaves either all of the old suffix or
    /// none of it (never old and new entries at one position). A 0.2.0-style cursor past
    /// `position` moves back to it. Truncating at or past the end does nothing; truncating
    /// below the purge floor is `InvalidInput` (entries below it are gone already).
    pub fn truncate_from(&self, position: u64) -> io::Result<()> {
        Ok(self.engine.truncate_from(&self.topic, position)?)
    }

    /// Removes every entry after `position` (see [`truncate_from`](Self::truncate_from)):
    /// the next append gets `position + 1`.
    pub fn truncate_after(&self, position: u64) -> io::Result<()> {
        self.truncate_from(position.saturating_add(1))
    }

    /// Replaces the topic's metadata record with `bytes` (at most [`META_BYTES_MAX`]),
    /// durably when this returns, atomically across a crash (the old record or the new one,
    /// never a mix). For what must survive beside the log, such as a Raft vote.
    ///
    /// [`META_BYTES_MAX`]: crate::META_BYTES_MAX
    pub fn set_meta(&self, bytes: &[u8]) -> io::Result<()> {
        Ok(self.engine.set_meta(&self.topic, bytes)?)
    }

    /// The topic's metadata record, `None` if none was ever set.
    pub fn meta(&self) -> Option<Vec<u8>> {
        self.engine.meta(&self.topic)
    }

    /// Makes everything appended so far (by any handle on the instance) durable: one sync
    /// round of the group commit, shared with concurrent callers.
    pub fn sync(&self) -> io::Result<()> {
        Ok(self.engine.flush()?)
    }

    /// Asks for a group-commit sync round to start now, on the instance's background sync
    /// thread, instead of at its next tick; returns at once. Appends made before the round
    /// starts share it, so a caller that appends, registers [`on_durable`](Self::on_durable)
    /// and calls this gets its callback after about one fdatasync, without an fsync per
    /// call and without blocking (what a Raft engine's flush callback wants). Under
    /// `NoFsync` or `SyncEach` the first call starts a background thread that syncs when
    /// asked (and otherwise once an hour).
    pub fn sync_soon(&self) -> io::Result<()> {
        Ok(self.engine.sync_soon()?)
    }

    /// The last position known durable (every position up to it is), from the completed
    /// sync rounds; `None` if none is. Under heavy load it may lag by one sync round.
    pub fn durable_position(&self) -> Option<u64> {
        self.engine.durable_position(&self.topic)
    }

    /// Blocks until `position` (appended already, else `InvalidInput`) is durable, sharing
    /// syncs with other appenders. Under `SyncEach` and `NoFsync` it joins the sync round in
    /// progress or leads the next one (`NoFsync` therefore triggers a sync); under
    /// `Milliseconds(n)` it waits for the background sync, and syncs itself only if none came
    /// within `2n` ms. Fails if the instance is poisoned by a failed sync.
    pub fn wait_durable(&self, position: u64) -> io::Result<()> {
        Ok(self
            .engine
            .wait_position_durable(&self.topic, position, self.schedule)?)
    }

    /// Calls `callback` exactly once: with `Ok(())` when `position` is durable (at once, in
    /// this thread, if it is already; else from the thread that completes the covering sync
    /// round, so it should be quick and must not panic), or with an error if the instance is
    /// poisoned or closed first. It triggers no sync: under `NoFsync` it runs at the next `sync`, `flush` or
    /// `wait_durable`. `position` must be appended already (else `InvalidInput`, and the
    /// callback is dropped uncalled). A callback holding a handle keeps the instance open
    /// until it runs.
    pub fn on_durable(
        &self,
        position: u64,
        callback: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> io::Result<()> {
        let callback =
            Box::new(move |result: crate::Result<()>| callback(result.map_err(Into::into)));
        Ok(self
            .engine
            .on_position_durable(&self.topic, position, callback)?)
    }

    /// Blocks until `position` exists or `timeout` passes, and returns whether it does: once
    /// [`next_position`](Self::next_position) is past it (it was appended, or skipped by a
    /// purge past the end; it may be purged since). Woken by the writer when it publishes,
    /// no polling; `Duration::MAX` waits without limit.
    pub fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        self.topic.positions.tail.wait_past(position, deadline)
    }
}
