//! Reading a group's log: [`WalrusLogReader`], openraft's [`RaftLogReader`] on a
//! [`TopicLog`], and the range reads the log store shares with it.

use std::{
    fmt::{self, Debug},
    io,
    marker::PhantomData,
    ops::{Bound, RangeBounds},
};

use openraft::{OptionalSend, RaftLogReader, RaftTypeConfig, alias::VoteOf, entry::RaftEntry};
use walrus_rust::TopicLog;

use crate::{codec, meta::RaftMeta};

/// Payload bytes asked of one `read_range` call while reading a range of entries.
const READ_CHUNK_BYTES: usize = 4 << 20;

/// Payload bytes that [`RaftLogReader::limited_get_log_entries`] returns at most (but at
/// least one entry): what openraft sends in one replication request.
const LIMITED_READ_BYTES: usize = 1 << 20;

/// Reads a Raft group's log entries and vote from its topic: what
/// [`WalrusLogStore::get_log_reader`](openraft::storage::RaftLogStorage::get_log_reader) hands to
/// openraft's replication tasks. Cheap to create; sees every entry appended, by any handle,
/// as soon as the append returns, and the vote as last saved.
pub struct WalrusLogReader<C: RaftTypeConfig> {
    log: TopicLog,
    _config: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> WalrusLogReader<C> {
    /// A reader of the group whose log is `log`.
    pub fn new(log: TopicLog) -> Self {
        Self {
            log,
            _config: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig> Debug for WalrusLogReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalrusLogReader")
            .field("log", &self.log)
            .finish()
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for WalrusLogReader<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<C::Entry>> {
        read_entries::<C>(&self.log, &range, None)
    }

    async fn read_vote(&mut self) -> io::Result<Option<VoteOf<C>>> {
        Ok(RaftMeta::<C>::load(&self.log)?.vote)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<C::Entry>> {
        read_entries::<C>(&self.log, &(start..end), Some(LIMITED_READ_BYTES))
    }
}

/// The half-open range of indexes `range` stands for.
fn index_range(range: &impl RangeBounds<u64>) -> (u64, u64) {
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
    (start, end)
}

/// The entry stored at `position`, checked to carry that index.
pub(crate) fn decode_entry<C: RaftTypeConfig>(
    log: &TopicLog,
    position: u64,
    bytes: &[u8],
) -> io::Result<C::Entry> {
    let entry: C::Entry = codec::decode(bytes).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "raft entry at position {position} of topic {}: {e}",
                log.name()
            ),
        )
    })?;
    if entry.index() != position {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "topic {}: position {position} holds the entry of index {}",
                log.name(),
                entry.index()
            ),
        ));
    }
    Ok(entry)
}

/// The entries of `range` the log holds, in order: all of them, or with `limit` as many as
/// fit in `limit` payload bytes (at least one if any is readable). Entries before the first
/// readable one (purged) and after the last (not appended) are absent; a hole in between is
/// an `InvalidData` error.
pub(crate) fn read_entries<C: RaftTypeConfig>(
    log: &TopicLog,
    range: &impl RangeBounds<u64>,
    limit: Option<usize>,
) -> io::Result<Vec<C::Entry>> {
    let (start, end) = index_range(range);
    let mut entries = Vec::new();
    let mut next = start;
    while next < end {
        let chunk = log.read_range(next..end, limit.unwrap_or(READ_CHUNK_BYTES))?;
        let Some(&(first, _)) = chunk.first() else {
            break;
        };
        if !entries.is_empty() && first != next {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "topic {}: hole in the raft log, index {next} missing before {first}",
                    log.name()
                ),
            ));
        }
        next = first;
        for (position, bytes) in chunk {
            if position != next {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "topic {}: hole in the raft log, index {next} missing before \
                         {position}",
                        log.name()
                    ),
                ));
            }
            entries.push(decode_entry::<C>(log, position, &bytes)?);
            next = position + 1;
        }
        if limit.is_some() {
            break;
        }
    }
    Ok(entries)
}
