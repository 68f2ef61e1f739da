//! Inspection and repair: what `walrus-ctl` and `Walrus::topics()` show, reading a topic from
//! any position without moving its cursor, moving a cursor, and purging consumed files.

use std::sync::Arc;

use crate::{
    Engine, Error, Result,
    block::Block,
    frames::{READ_AHEAD_BYTES, ReadAhead, Step, find_seq},
    reader::ReadEntry,
    recovery::Finding,
    topic::Topic,
};

/// One topic's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Sequence number of the oldest entry still on disk.
    pub first_seq: u64,
    /// Sequence number the next append gets.
    pub next_seq: u64,
    /// Entries on disk (`next_seq - first_seq`).
    pub entries: u64,
    /// Bytes of published frames on disk (headers included).
    pub bytes: u64,
    /// Sequence number of the next entry the cursor delivers.
    pub cursor: u64,
    /// The cursor as last persisted, if it ever was.
    pub persisted_cursor: Option<u64>,
    /// Entries appended but not yet read (`next_seq - cursor`).
    pub lag: u64,
}

/// One segment file's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// The file name.
    pub name: String,
    /// Its sequence number.
    pub seq: u64,
    /// Its length on disk.
    pub bytes: u64,
    /// Extents handed out from it.
    pub extents: u32,
    /// Extents still being written.
    pub writing: u32,
    /// Extents fully consumed.
    pub consumed: u32,
    /// Whether it takes no more extents.
    pub full: bool,
}

/// Where to move a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorTarget {
    /// The oldest entry still on disk.
    Earliest,
    /// After the newest entry (nothing left to read).
    Latest,
    /// The entry with this sequence number (clamped to what is on disk).
    Seq(u64),
}

/// What [`Engine::purge`] freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Segment files deleted.
    pub files_deleted: u64,
    /// Their bytes.
    pub bytes_freed: u64,
}

fn block_len(block: &Block) -> u64 {
    block.visible().1.saturating_sub(block.data_start)
}

impl Engine {
    fn topic_info(topic: &Topic) -> TopicInfo {
        let next_seq = topic.writer.lock().next_seq;
        let (cursor, persisted_cursor) = {
            let reader = topic.reader.lock();
            (reader.next_seq, reader.persisted_seq)
        };
        let chain = topic.chain.read();
        let first_seq = chain
            .front()
            .map_or(next_seq, |b| b.first_seq)
            .min(next_seq);
        let bytes = chain.iter().map(|b| block_len(b)).sum();
        TopicInfo {
            name: topic.name.clone(),
            first_seq,
            next_seq,
            entries: next_seq - first_seq,
            bytes,
            cursor,
            persisted_cursor,
            lag: next_seq.saturating_sub(cursor),
        }
    }

    /// Figures of every topic, sorted by name.
    pub fn topics_info(&self) -> Vec<TopicInfo> {
        let topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        let mut infos: Vec<TopicInfo> = topics.iter().map(|t| Self::topic_info(t)).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// Figures of one topic.
    pub fn topic_info_of(&self, name: &str) -> Option<TopicInfo> {
        self.topic(name).map(|t| Self::topic_info(&t))
    }

    /// Figures of every segment file, by sequence number.
    pub fn files_info(&self) -> Vec<FileInfo> {
        let mut infos: Vec<FileInfo> = self
            .alloc
            .files()
            .iter()
            .map(|f| {
                let counts = f.counts();
                FileInfo {
                    name: f.name().to_owned(),
                    seq: f.seq(),
                    bytes: f.block_offset(f.block_count()),
                    extents: counts.allocated,
                    writing: counts.writing,
                    consumed: counts.consumed,
                    full: counts.fully_allocated,
                }
            })
            .collect();
        infos.sort_by_key(|f| f.seq);
        infos
    }

    /// What recovery found wrong when this directory was opened.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Up to `limit` entries of `topic` from sequence number `from`, without touching the
    /// cursor. Only entries still on disk can be read.
    pub fn read_from(&self, topic: &str, from: u64, limit: usize) -> Result<Vec<ReadEntry>> {
        let Some(topic) = self.topic(topic) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut ahead = ReadAhead::default();
        let chain: Vec<Arc<Block>> = topic.chain.read().iter().cloned().collect();
        let start = chain.iter().rposition(|b| b.first_seq <= from).unwrap_or(0);
        for (index, block) in chain.iter().enumerate().skip(start) {
            let (_, end) = block.visible();
            let mut offset = if index == start {
                find_seq(block, from, end).unwrap_or(end)
            } else {
                block.data_start
            };
            while offset < end && out.len() < limit {
                match ahead.frame_at(block, offset, end, READ_AHEAD_BYTES, block.first_seq)? {
                    Step::Entry { seq, payload, next } => {
                        if seq >= from {
                            let data = payload.to_vec();
                            out.push(ReadEntry { seq, data });
                        }
                        offset = next;
                    }
                    Step::Damaged { resume } => offset = resume,
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Moves the cursor of `topic` and persists it at once. Returns the sequence number it
    /// now points at.
    pub fn set_cursor(&self, topic: &str, target: CursorTarget) -> Result<u64> {
        if self.config.read_only {
            return Err(Error::ReadOnly("cursor set"));
        }
        let Some(topic) = self.topic(topic) else {
            return Err(Error::InvalidInput(format!("unknown topic {topic:?}")));
        };
        let next_seq = topic.writer.lock().next_seq;
        let mut reader = topic.reader.lock();
        let earliest = topic.chain.read().front().map_or(next_seq, |b| b.first_seq);
        let seq = match target {
            CursorTarget::Earliest => earliest,
            CursorTarget::Latest => next_seq,
            CursorTarget::Seq(seq) => seq.clamp(earliest, next_seq),
        };
        let behind = {
            let chain = topic.chain.read();
            chain
                .iter()
                .skip(1)
                .take_while(|b| b.first_seq <= seq)
                .count()
        };
        topic.pass_blocks(&mut reader, behind, seq);
        reader.offset = match topic.block_at(0) {
            Some(block) => {
                let (_, end) = block.visible();
                find_seq(&block, seq, end).unwrap_or(end)
            }
            None => 0,
        };
        reader.next_seq = seq;
        self.persist(&topic, &mut reader)?;
        Ok(seq)
    }

    /// Lets go of every block that every cursor has passed, so files whose blocks are all
    /// consumed are deleted now rather than at the next read.
    pub fn purge(&self) -> Result<PurgeReport> {
        if self.config.read_only {
            return Err(Error::ReadOnly("purge"));
        }
        let before = self.files_info();
        let topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        for topic in topics {
            let mut reader = topic.reader.lock();
            let exhausted = {
                let chain = topic.chain.read();
                let mut offset = reader.offset;
                let mut count = 0;
                for block in chain.iter().take(chain.len().saturating_sub(1)) {
                    let (sealed, end) = block.visible();
                    if !sealed || offset.max(block.data_start) < end {
                        break;
                    }
                    count += 1;
                    offset = 0;
                }
                count
            };
            if exhausted > 0 {
                let next_seq = reader.next_seq;
                topic.pass_blocks(&mut reader, exhausted, next_seq);
                reader.offset = 0;
                // Persisting makes the passed blocks releasable.
                self.persist(&topic, &mut reader)?;
            }
        }
        let after: Vec<u64> = self.files_info().iter().map(|f| f.seq).collect();
        let gone: Vec<&crate::inspect::FileInfo> =
            before.iter().filter(|f| !after.contains(&f.seq)).collect();
        Ok(PurgeReport {
            files_deleted: gone.len() as u64,
            bytes_freed: gone.iter().map(|f| f.bytes).sum(),
        })
    }
}
