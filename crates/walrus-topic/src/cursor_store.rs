//! The persisted read cursors: two fixed 256-byte slots per topic in pre-sized cursor files.
//!
//! Persisting one cursor writes one slot and syncs its file (or leaves the sync to the next
//! group-commit round: `crate::deferred_cursors`): the cost is the same with one topic or ten
//! thousand. Each topic has two slots, and a write never goes to the one holding the newest
//! durable generation, so a torn or lost write destroys at most a newer one and recovery
//! (which takes the highest valid generation of the two) falls back to the durable one.

use std::{collections::HashMap, sync::Arc};

use parking_lot::{Mutex, RwLock};
use walrus_storage::{Decoded, FrameHeader, Segment, Storage, decode_frame, encode_frame};

use crate::{
    Error, Result,
    format::{
        CURSOR_EXTENT_OFFSET_OFFSET, CURSOR_FILE_BYTES, CURSOR_FILE_SEQ_OFFSET, CURSOR_FIXED_BYTES,
        CURSOR_GENERATION_MAX, CURSOR_IN_EXTENT_OFFSET, CURSOR_KIND, CURSOR_NEXT_SEQ_OFFSET,
        CURSOR_SLOT_BYTES, CURSOR_TOPICS_PER_FILE, TOPIC_NAME_BYTES_MAX, cursor_file_name,
        parse_cursor_file_name, u64_at,
    },
};

/// A read position that survives restarts and file deletion: the sequence number of the next
/// entry, plus where that entry was (a hint checked against the data at recovery).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PersistedCursor {
    pub(crate) next_seq: u64,
    pub(crate) file_seq: u64,
    pub(crate) extent_offset: u64,
    pub(crate) offset: u64,
}

/// A cursor found at recovery, with its slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadedCursor {
    pub(crate) slot: u32,
    pub(crate) generation: u64,
    /// Which of the slot's two halves holds it.
    pub(crate) half: u8,
    pub(crate) cursor: PersistedCursor,
}

#[derive(Debug)]
pub(crate) struct CursorStore {
    storage: Arc<dyn Storage>,
    files: RwLock<Vec<Arc<dyn Segment>>>,
    next_slot: Mutex<u32>,
}

fn decode_slot(bytes: &[u8], slot: u32) -> Option<(u64, String, PersistedCursor)> {
    let Decoded::Frame(frame) = decode_frame(bytes) else {
        return None;
    };
    let p = frame.payload;
    // A slot holds at most the longest topic name: a longer one is not a slot this code wrote
    // (and persisting its cursor again would not fit).
    let name_len = p.len().checked_sub(CURSOR_FIXED_BYTES)?;
    if frame.header.kind != CURSOR_KIND
        || frame.header.aux != slot
        || name_len > TOPIC_NAME_BYTES_MAX
        || frame.header.seq >= CURSOR_GENERATION_MAX
    {
        return None;
    }
    let name = std::str::from_utf8(&p[CURSOR_FIXED_BYTES..])
        .ok()?
        .to_owned();
    let cursor = PersistedCursor {
        next_seq: u64_at(p, CURSOR_NEXT_SEQ_OFFSET),
        file_seq: u64_at(p, CURSOR_FILE_SEQ_OFFSET),
        extent_offset: u64_at(p, CURSOR_EXTENT_OFFSET_OFFSET),
        offset: u64_at(p, CURSOR_IN_EXTENT_OFFSET),
    };
    Some((frame.header.seq, name, cursor))
}

impl CursorStore {
    /// Opens the cursor files of `storage` and returns every topic's newest valid cursor.
    pub(crate) fn open(storage: Arc<dyn Storage>) -> Result<(Self, HashMap<String, LoadedCursor>)> {
        let mut indexes: Vec<u32> = storage
            .list()?
            .iter()
            .filter_map(|n| parse_cursor_file_name(n))
            .collect();
        indexes.sort_unstable();
        let mut files = Vec::new();
        let mut found: HashMap<String, LoadedCursor> = HashMap::new();
        let mut next_slot = 0;
        for (position, index) in indexes.into_iter().enumerate() {
            if index as usize != position {
                // Files are created in order; a gap means the rest were never made durable.
                break;
            }
            let segment = storage.open(&cursor_file_name(index))?;
            let mut bytes = vec![0u8; segment.len().min(CURSOR_FILE_BYTES) as usize];
            segment.read_at(0, &mut bytes)?;
            for pair in 0..CURSOR_TOPICS_PER_FILE {
                let slot = index * CURSOR_TOPICS_PER_FILE + pair;
                let start = (u64::from(pair) * 2 * CURSOR_SLOT_BYTES) as usize;
                let best = (0..2u8)
                    .filter_map(|half| {
                        let at = start + usize::from(half) * CURSOR_SLOT_BYTES as usize;
                        bytes
                            .get(at..at + CURSOR_SLOT_BYTES as usize)
                            .and_then(|b| decode_slot(b, slot))
                            .map(|found| (half, found))
                    })
                    .max_by_key(|(_, (generation, _, _))| *generation);
                if let Some((half, (generation, name, cursor))) = best {
                    next_slot = slot + 1;
                    let loaded = LoadedCursor {
                        slot,
                        generation,
                        half,
                        cursor,
                    };
                    let keep = found
                        .get(&name)
                        .is_none_or(|old| old.cursor.next_seq < cursor.next_seq);
                    if keep {
                        found.insert(name, loaded);
                    }
                }
            }
            files.push(segment);
        }
        let store = Self {
            storage,
            files: RwLock::new(files),
            next_slot: Mutex::new(next_slot),
        };
        Ok((store, found))
    }

    /// A fresh slot for a topic that has none, creating a cursor file when needed.
    pub(crate) fn assign_slot(&self) -> Result<u32> {
        let mut next = self.next_slot.lock();
        let slot = *next;
        let file_index = slot / CURSOR_TOPICS_PER_FILE;
        let mut files = self.files.write();
        while files.len() <= file_index as usize {
            let index = files.len() as u32;
            files.push(
                self.storage
                    .create(&cursor_file_name(index), CURSOR_FILE_BYTES)?,
            );
        }
        *next += 1;
        Ok(slot)
    }

    /// Syncs every cursor file. At open, this makes the cursors found durable: a write left
    /// to a sync round that never came (a `NoFsync` close, a killed process) may be only in
    /// the page cache, and the next write must be able to treat the newest generation as
    /// durable (`TopicReader::half_for_write` overwrites the other half).
    pub(crate) fn sync_all(&self) -> Result<()> {
        for file in self.files.read().iter() {
            file.sync()?;
        }
        Ok(())
    }

    /// The cursor file that holds `slot` (assigned already).
    pub(crate) fn file_of(&self, slot: u32) -> Arc<dyn Segment> {
        Arc::clone(&self.files.read()[(slot / CURSOR_TOPICS_PER_FILE) as usize])
    }

    /// Writes `cursor` for `topic` as `generation` into half `half` (0 or 1) of `slot`, then,
    /// with `sync`, syncs its file.
    pub(crate) fn persist(
        &self,
        (slot, half): (u32, u8),
        generation: u64,
        topic: &str,
        cursor: &PersistedCursor,
        sync: bool,
    ) -> Result<()> {
        let segment = self.file_of(slot);
        let mut payload = [0u8; CURSOR_FIXED_BYTES + crate::format::TOPIC_NAME_BYTES_MAX];
        for (at, value) in [
            (CURSOR_NEXT_SEQ_OFFSET, cursor.next_seq),
            (CURSOR_FILE_SEQ_OFFSET, cursor.file_seq),
            (CURSOR_EXTENT_OFFSET_OFFSET, cursor.extent_offset),
            (CURSOR_IN_EXTENT_OFFSET, cursor.offset),
        ] {
            payload[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        let end = CURSOR_FIXED_BYTES + topic.len();
        payload[CURSOR_FIXED_BYTES..end].copy_from_slice(topic.as_bytes());
        let mut bytes = Vec::with_capacity(CURSOR_SLOT_BYTES as usize);
        let header = FrameHeader {
            kind: CURSOR_KIND,
            flags: 0,
            aux: slot,
            seq: generation,
        };
        encode_frame(&mut bytes, &header, &payload[..end]);
        bytes.resize(CURSOR_SLOT_BYTES as usize, 0);
        let pair = u64::from(slot % CURSOR_TOPICS_PER_FILE);
        let offset = pair * 2 * CURSOR_SLOT_BYTES + u64::from(half & 1) * CURSOR_SLOT_BYTES;
        let Err(err) = segment
            .write_at(offset, &bytes)
            .and_then(|()| if sync { segment.sync() } else { Ok(()) })
        else {
            return Ok(());
        };
        // The slot may now hold the new position, whole or in part, in the page cache if not
        // on disk, although the read that asked for it fails and delivers nothing. Clear the
        // slot so that the other one (the previous position) stays the newest; if even that
        // fails, the instance must be poisoned.
        // Mutant cursor_slot_not_rolled_back: leaves the failed slot write in place.
        if !cfg!(walrus_mutant = "cursor_slot_not_rolled_back") {
            let zeros = [0u8; CURSOR_SLOT_BYTES as usize];
            if let Err(undo) = segment
                .write_at(offset, &zeros)
                .and_then(|()| segment.sync())
            {
                return Err(Error::CursorUndoFailed(err, undo));
            }
        }
        Err(err.into())
    }
}
