//! [`WalrusLogStore`]: openraft's [`RaftLogStorage`] on one topic of a Walrus instance.

use std::{
    fmt::{self, Debug},
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use openraft::{
    OptionalSend, RaftTypeConfig,
    alias::{LogIdOf, VoteOf},
    entry::RaftEntry,
    storage::{IOFlushed, LogState, RaftLogStorage},
};
use parking_lot::Mutex;
use walrus_rust::{BATCH_BYTES_MAX, BATCH_ENTRIES_MAX, TopicLog, Walrus};

use crate::{
    codec,
    log_reader::{WalrusLogReader, decode_entry},
    meta::RaftMeta,
};

/// How often a committed log id is written to the meta record at most, by default.
const DEFAULT_COMMITTED_INTERVAL: Duration = Duration::from_millis(100);

/// The topic that holds the log of Raft group `group`: `raft-<group>`.
pub fn topic_name(group: u64) -> String {
    format!("raft-{group}")
}

/// Openraft's log storage for one Raft group, on one topic of a [`Walrus`] instance (see the
/// [crate docs](crate) for the mapping of indexes to positions and what the meta record
/// holds). One instance per node holds the logs of all its groups; open one store per group.
///
/// The store must be the only writer of its topic. It and its readers keep the instance open,
/// as a `TopicLog` does (openraft drops them shortly after `Raft::shutdown` returns).
pub struct WalrusLogStore<C: RaftTypeConfig> {
    log: TopicLog,
    /// What the topic's meta record holds. Changed only under its lock, by the task that
    /// writes the record, after the write succeeded.
    meta: Arc<Mutex<RaftMeta<C>>>,
    /// The committed log id openraft saved last; the meta record may hold an older one.
    committed: Option<LogIdOf<C>>,
    committed_interval: Duration,
    committed_written: Option<Instant>,
}

impl<C: RaftTypeConfig> Debug for WalrusLogStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalrusLogStore")
            .field("log", &self.log)
            .field("meta", &*self.meta.lock())
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> WalrusLogStore<C> {
    /// The store of Raft group `group`, on topic [`topic_name`]`(group)` of `wal`.
    pub fn open(wal: &Walrus, group: u64) -> io::Result<Self> {
        Self::with_log(wal.topic_log(&topic_name(group))?)
    }

    /// The store whose log is `log`. Finishes a purge that a crash interrupted (the meta
    /// record names a purged log id whose entries are still there).
    pub fn with_log(log: TopicLog) -> io::Result<Self> {
        let meta = RaftMeta::<C>::load(&log)?;
        if let Some(purged) = &meta.last_purged {
            let floor = log.first().unwrap_or_else(|| log.next_position());
            if floor <= purged.index() {
                tracing::info!(
                    topic = log.name(),
                    purged = purged.index(),
                    "finishing an interrupted purge"
                );
                log.purge_before(purged.index() + 1)?;
            }
        }
        Ok(Self {
            log,
            committed: meta.committed.clone(),
            meta: Arc::new(Mutex::new(meta)),
            committed_interval: DEFAULT_COMMITTED_INTERVAL,
            committed_written: None,
        })
    }

    /// Writes the committed log id to the meta record at most once per `interval` (default
    /// 100 ms): each write is an fsync, and openraft saves it whenever the commit advances.
    /// `Duration::ZERO` writes it every time it changed.
    pub fn committed_interval(mut self, interval: Duration) -> Self {
        self.committed_interval = interval;
        self
    }

    /// The topic this store keeps its group's log in.
    pub fn topic_log(&self) -> &TopicLog {
        &self.log
    }

    /// Rewrites the meta record with `change` applied, durably, off the async threads.
    /// Writers are serialized by the lock, held across the write; the cached record changes
    /// only once the write succeeded, even if the caller's future is dropped meanwhile.
    async fn write_meta(
        &self,
        change: impl FnOnce(&mut RaftMeta<C>) + Send + 'static,
        then: impl FnOnce(&TopicLog) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let log = self.log.clone();
        let meta = Arc::clone(&self.meta);
        blocking(move || {
            let mut current = meta.lock();
            let mut next = current.clone();
            change(&mut next);
            log.set_meta(&next.encode()?)?;
            *current = next;
            drop(current);
            then(&log)
        })
        .await
    }

    /// Makes `index` the position the next append gets, if that needs no data removed: the
    /// log holds no entry and its next position is lower (openraft appends after a gap on
    /// an empty log: the suite does, and so could a caller after removing every entry).
    async fn place(&self, index: u64) -> io::Result<()> {
        let next = self.log.next_position();
        if index == next {
            return Ok(());
        }
        if index > next && self.log.first().is_none() {
            tracing::debug!(
                topic = self.log.name(),
                next,
                index,
                "empty log starts later"
            );
            let log = self.log.clone();
            return blocking(move || log.purge_before(index)).await;
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "topic {}: append at index {index}, but the next index is {next} (entries from \
                 {:?}): a log is neither overwritten nor given a hole; truncate or purge first",
                self.log.name(),
                self.log.first()
            ),
        ))
    }

    /// Appends `encoded` (crash-atomically) at `expected`.
    fn append_batch(&self, encoded: &[Vec<u8>], expected: u64) -> io::Result<u64> {
        let batch: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let positions = self.log.append_batch(&batch)?;
        if positions.start != expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "topic {}: entries of index {expected} landed at position {}: another \
                     writer appends to this topic",
                    self.log.name(),
                    positions.start
                ),
            ));
        }
        Ok(positions.end)
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for WalrusLogStore<C> {
    type LogReader = WalrusLogReader<C>;

    async fn get_log_state(&mut self) -> io::Result<LogState<C>> {
        let last_purged = self.meta.lock().last_purged.clone();
        let last_entry = match (self.log.first(), self.log.last()) {
            (Some(_), Some(last)) => {
                let bytes = self.log.read_at(last)?.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("topic {}: last entry {last} unreadable", self.log.name()),
                    )
                })?;
                Some(decode_entry::<C>(&self.log, last, &bytes)?.log_id())
            }
            _ => None,
        };
        // Entries at or before the purged id are gone, whether or not a crash let the purge
        // of the topic happen.
        let last_log_id = match (last_entry, &last_purged) {
            (Some(last), Some(purged)) if last.index() <= purged.index() => last_purged.clone(),
            (Some(last), _) => Some(last),
            (None, _) => last_purged.clone(),
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        WalrusLogReader::new(self.log.clone())
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> io::Result<()> {
        let vote = vote.clone();
        self.write_meta(move |meta| meta.vote = Some(vote), |_| Ok(()))
            .await
    }

    /// Keeps `committed` for [`read_committed`](Self::read_committed), and writes it to the
    /// meta record if the last write is [`committed_interval`](WalrusLogStore::committed_interval)
    /// old. A restart re-applies the log up to the committed id read back, so the record
    /// never names an entry that is not durable: the write first waits for the group commit
    /// to cover the entry (no sync of its own), and an entry this log does not hold yet is
    /// not written. A restart may thus read back an older committed id; openraft catches up.
    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> io::Result<()> {
        self.committed = committed.clone();
        let Some(committed) = committed else {
            return Ok(());
        };
        if self
            .committed_written
            .is_some_and(|at| at.elapsed() < self.committed_interval)
        {
            return Ok(());
        }
        let (written, purged) = {
            let meta = self.meta.lock();
            (meta.committed.clone(), meta.last_purged.clone())
        };
        if written.as_ref() >= Some(&committed) {
            return Ok(());
        }
        let index = committed.index();
        let in_log = purged.is_none_or(|p| p.index() < index);
        if in_log && index >= self.log.next_position() {
            return Ok(());
        }
        if in_log && self.log.durable_position().is_none_or(|d| d < index) {
            let log = self.log.clone();
            blocking(move || log.wait_durable(index)).await?;
        }
        self.write_meta(
            move |meta| {
                if meta.committed.as_ref() < Some(&committed) {
                    meta.committed = Some(committed);
                }
            },
            |_| Ok(()),
        )
        .await?;
        self.committed_written = Some(Instant::now());
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogIdOf<C>>> {
        Ok(self.committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> io::Result<()>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut entries = entries.into_iter().peekable();
        let Some(first) = entries.peek() else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let first = first.index();
        self.place(first).await?;

        // Batches of at most BATCH_ENTRIES_MAX entries and BATCH_BYTES_MAX bytes.
        let mut next = first;
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut batch_bytes = 0u64;
        for entry in entries {
            let expected = next + batch.len() as u64;
            if entry.index() != expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "append: entry of index {} where {expected} was expected",
                        entry.index()
                    ),
                ));
            }
            let bytes = codec::encode(&entry)?;
            let len = bytes.len() as u64;
            if !batch.is_empty()
                && (batch.len() == BATCH_ENTRIES_MAX || batch_bytes + len > BATCH_BYTES_MAX)
            {
                next = self.append_batch(&batch, next)?;
                batch.clear();
                batch_bytes = 0;
            }
            batch.push(bytes);
            batch_bytes += len;
        }
        next = self.append_batch(&batch, next)?;

        // The callback runs once the group commit's fdatasync covers the last entry, which
        // starts now rather than at the next tick of the schedule: appends made meanwhile
        // (other groups', the next calls') share it.
        self.log
            .on_durable(next - 1, move |result| callback.io_completed(result))?;
        self.log.sync_soon()
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> io::Result<()> {
        let from = last_log_id.as_ref().map_or(0, |id| id.index() + 1);
        if let Some(purged) = &self.meta.lock().last_purged
            && from <= purged.index()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "topic {}: truncate after {last_log_id:?}, at or before the purged {purged}",
                    self.log.name()
                ),
            ));
        }
        // Positions below the first readable one hold no entry (a gap before the first
        // append): removing every entry is truncating at the first.
        let floor = self.log.first().unwrap_or_else(|| self.log.next_position());
        let from = from.max(floor);
        tracing::debug!(topic = self.log.name(), from, "truncate");
        let log = self.log.clone();
        blocking(move || log.truncate_from(from)).await
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> io::Result<()> {
        if self.meta.lock().last_purged.as_ref() >= Some(&log_id) {
            return Ok(());
        }
        tracing::debug!(topic = self.log.name(), upto = log_id.index(), "purge");
        let before = log_id.index() + 1;
        // The meta record first: if a crash comes before the topic's purge, opening the
        // store finishes it.
        self.write_meta(
            move |meta| meta.last_purged = Some(log_id),
            move |log| log.purge_before(before),
        )
        .await
    }
}

/// Runs `f`, which blocks on an fsync, on tokio's blocking threads when called in a tokio
/// runtime (inline elsewhere), and waits for it.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => match runtime.spawn_blocking(f).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(io::Error::other(format!("blocking task: {e}"))),
        },
        Err(_) => f(),
    }
}
