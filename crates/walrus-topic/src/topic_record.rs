//! Topic records: a small durable record per topic, for what must survive beside its entries
//! (the user's metadata, `TopicLog::set_meta`) and for the topic's last truncation, which
//! recovery must finish if a crash interrupted it (`log/truncate.rs`).
//!
//! Like cursors, each topic that has a record owns two fixed slots in pre-sized record files
//! and writes them in turn (by generation), syncing the file each time: a torn write destroys
//! at most the newer slot, and the older one is then the record. Only topics that use these
//! calls get slots, so a directory of plain topics has no record file at all.

use std::{collections::HashMap, sync::Arc};

use parking_lot::{Mutex, RwLock};
use walrus_storage::{Decoded, FrameHeader, Segment, Storage, decode_frame, encode_frame};

use crate::{
    Error, Result,
    format::{
        CURSOR_GENERATION_MAX, META_BYTES_MAX, RECORD_CLOSE_AT_OFFSET, RECORD_CLOSE_FILE_OFFSET,
        RECORD_CUT_PENDING, RECORD_CUT_SEQ_OFFSET, RECORD_FILE_BYTES, RECORD_FIXED_BYTES,
        RECORD_HAS_CUT, RECORD_HAS_META, RECORD_KIND, RECORD_META_LEN_OFFSET,
        RECORD_NAME_LEN_OFFSET, RECORD_SLOT_BYTES, RECORD_TOPICS_PER_FILE, TOPIC_NAME_BYTES_MAX,
        parse_record_file_name, record_file_name, u64_at,
    },
};

/// A topic's last truncation: entries at `seq` and after were removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(crate) seq: u64,
    /// The removal may not be complete on disk (a crash came before it was): recovery
    /// removes those entries again and then clears this.
    pub(crate) pending: bool,
    /// `(file sequence number, file offset)` of the entry before `seq` when the truncation
    /// made it the last of its batch (its header is rewritten with the batch-end flag).
    pub(crate) close_at: Option<(u64, u64)>,
}

/// What a topic's record holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TopicRecord {
    pub(crate) meta: Option<Vec<u8>>,
    pub(crate) cut: Option<Cut>,
}

#[derive(Debug, Default)]
struct Slotted {
    slot: Option<u32>,
    generation: u64,
    record: TopicRecord,
}

/// The record files of a directory and every topic's current record.
#[derive(Debug)]
pub(crate) struct RecordStore {
    storage: Arc<dyn Storage>,
    files: RwLock<Vec<Arc<dyn Segment>>>,
    next_slot: Mutex<u32>,
    records: Mutex<HashMap<String, Arc<Mutex<Slotted>>>>,
}

impl RecordStore {
    /// Opens the record files of `storage`, taking each topic's newest valid record.
    pub(crate) fn open(storage: Arc<dyn Storage>) -> Result<Self> {
        let mut indexes: Vec<u32> = storage
            .list()?
            .iter()
            .filter_map(|n| parse_record_file_name(n))
            .collect();
        indexes.sort_unstable();
        let mut files = Vec::new();
        let mut records: HashMap<String, Arc<Mutex<Slotted>>> = HashMap::new();
        let mut next_slot = 0;
        for (position, index) in indexes.into_iter().enumerate() {
            if index as usize != position {
                // Files are created in order; a gap means the rest were never made durable.
                break;
            }
            let segment = storage.open(&record_file_name(index))?;
            let mut bytes = vec![0u8; segment.len().min(RECORD_FILE_BYTES) as usize];
            segment.read_at(0, &mut bytes)?;
            for pair in 0..RECORD_TOPICS_PER_FILE {
                let slot = index * RECORD_TOPICS_PER_FILE + pair;
                let start = (u64::from(pair) * 2 * RECORD_SLOT_BYTES) as usize;
                let best = (0..2)
                    .filter_map(|half| {
                        let at = start + half * RECORD_SLOT_BYTES as usize;
                        bytes
                            .get(at..at + RECORD_SLOT_BYTES as usize)
                            .and_then(|b| decode_slot(b, slot))
                    })
                    .max_by_key(|(generation, _, _)| *generation);
                if let Some((generation, name, record)) = best {
                    next_slot = slot + 1;
                    let slotted = Slotted {
                        slot: Some(slot),
                        generation,
                        record,
                    };
                    records.insert(name, Arc::new(Mutex::new(slotted)));
                }
            }
            files.push(segment);
        }
        Ok(Self {
            storage,
            files: RwLock::new(files),
            next_slot: Mutex::new(next_slot),
            records: Mutex::new(records),
        })
    }

    fn entry(&self, topic: &str) -> Arc<Mutex<Slotted>> {
        let mut records = self.records.lock();
        Arc::clone(records.entry(topic.to_owned()).or_default())
    }

    /// The record of `topic` (empty if it has none).
    pub(crate) fn get(&self, topic: &str) -> TopicRecord {
        match self.records.lock().get(topic) {
            Some(slotted) => slotted.lock().record.clone(),
            None => TopicRecord::default(),
        }
    }

    /// Every topic whose last truncation recovery must finish.
    pub(crate) fn pending_cuts(&self) -> HashMap<String, Cut> {
        self.records
            .lock()
            .iter()
            .filter_map(|(name, slotted)| {
                let cut = slotted.lock().record.cut?;
                cut.pending.then(|| (name.clone(), cut))
            })
            .collect()
    }

    /// Replaces the record of `topic` with what `change` makes of it, durably; on failure the
    /// record stays as it was (on disk and here).
    pub(crate) fn update(&self, topic: &str, change: impl FnOnce(&mut TopicRecord)) -> Result<()> {
        let entry = self.entry(topic);
        let mut slotted = entry.lock();
        let mut record = slotted.record.clone();
        change(&mut record);
        if let Some(meta) = &record.meta
            && meta.len() > META_BYTES_MAX
        {
            return Err(Error::InvalidInput(format!(
                "metadata record of {} bytes exceeds the limit of {META_BYTES_MAX}",
                meta.len()
            )));
        }
        let slot = match slotted.slot {
            Some(slot) => slot,
            None => {
                let slot = self.assign_slot()?;
                slotted.slot = Some(slot);
                slot
            }
        };
        let generation = slotted.generation + 1;
        self.write(slot, generation, topic, &record)?;
        slotted.generation = generation;
        slotted.record = record;
        Ok(())
    }

    fn assign_slot(&self) -> Result<u32> {
        let mut next = self.next_slot.lock();
        let slot = *next;
        let file_index = slot / RECORD_TOPICS_PER_FILE;
        let mut files = self.files.write();
        while files.len() <= file_index as usize {
            let index = files.len() as u32;
            files.push(
                self.storage
                    .create(&record_file_name(index), RECORD_FILE_BYTES)?,
            );
        }
        *next += 1;
        Ok(slot)
    }

    /// Writes `record` into half `generation % 2` of `slot` and syncs it; a failed write is
    /// undone (the slot zeroed), so the other half stays the newest.
    fn write(&self, slot: u32, generation: u64, topic: &str, record: &TopicRecord) -> Result<()> {
        let segment = self.files.read()[(slot / RECORD_TOPICS_PER_FILE) as usize].clone();
        let bytes = encode_slot(slot, generation, topic, record);
        let pair = u64::from(slot % RECORD_TOPICS_PER_FILE);
        let offset = pair * 2 * RECORD_SLOT_BYTES + (generation % 2) * RECORD_SLOT_BYTES;
        let Err(err) = segment
            .write_at(offset, &bytes)
            .and_then(|()| segment.sync())
        else {
            return Ok(());
        };
        let zeros = [0u8; RECORD_SLOT_BYTES as usize];
        if let Err(undo) = segment
            .write_at(offset, &zeros)
            .and_then(|()| segment.sync())
        {
            return Err(Error::RecordUndoFailed(err, undo));
        }
        Err(err.into())
    }
}

fn encode_slot(slot: u32, generation: u64, topic: &str, record: &TopicRecord) -> Vec<u8> {
    let meta = record.meta.as_deref().unwrap_or_default();
    let mut payload = vec![0u8; RECORD_FIXED_BYTES];
    let (cut_seq, close) = match record.cut {
        Some(cut) => (cut.seq, cut.close_at.unwrap_or((u64::MAX, u64::MAX))),
        None => (0, (u64::MAX, u64::MAX)),
    };
    for (at, value) in [
        (RECORD_CUT_SEQ_OFFSET, cut_seq),
        (RECORD_CLOSE_FILE_OFFSET, close.0),
        (RECORD_CLOSE_AT_OFFSET, close.1),
    ] {
        payload[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
    for (at, value) in [
        (RECORD_META_LEN_OFFSET, meta.len()),
        (RECORD_NAME_LEN_OFFSET, topic.len()),
    ] {
        payload[at..at + 4].copy_from_slice(&(value as u32).to_le_bytes());
    }
    payload.extend_from_slice(meta);
    payload.extend_from_slice(topic.as_bytes());
    let mut flags = 0;
    if record.meta.is_some() {
        flags |= RECORD_HAS_META;
    }
    if let Some(cut) = record.cut {
        flags |= RECORD_HAS_CUT;
        if cut.pending {
            flags |= RECORD_CUT_PENDING;
        }
    }
    let header = FrameHeader {
        kind: RECORD_KIND,
        flags,
        aux: slot,
        seq: generation,
    };
    let mut bytes = Vec::with_capacity(RECORD_SLOT_BYTES as usize);
    encode_frame(&mut bytes, &header, &payload);
    bytes.resize(RECORD_SLOT_BYTES as usize, 0);
    bytes
}

fn decode_slot(bytes: &[u8], slot: u32) -> Option<(u64, String, TopicRecord)> {
    let Decoded::Frame(frame) = decode_frame(bytes) else {
        return None;
    };
    let (h, p) = (frame.header, frame.payload);
    if h.kind != RECORD_KIND || h.aux != slot || h.seq >= CURSOR_GENERATION_MAX {
        return None;
    }
    let len_at = |at: usize| {
        let word: [u8; 4] = p.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(word) as usize)
    };
    let meta_len = len_at(RECORD_META_LEN_OFFSET)?;
    let name_len = len_at(RECORD_NAME_LEN_OFFSET)?;
    if meta_len > META_BYTES_MAX
        || name_len > TOPIC_NAME_BYTES_MAX
        || p.len() != RECORD_FIXED_BYTES + meta_len + name_len
    {
        return None;
    }
    let meta = &p[RECORD_FIXED_BYTES..RECORD_FIXED_BYTES + meta_len];
    let name = std::str::from_utf8(&p[RECORD_FIXED_BYTES + meta_len..]).ok()?;
    let close = (
        u64_at(p, RECORD_CLOSE_FILE_OFFSET),
        u64_at(p, RECORD_CLOSE_AT_OFFSET),
    );
    let record = TopicRecord {
        meta: (h.flags & RECORD_HAS_META != 0).then(|| meta.to_vec()),
        cut: (h.flags & RECORD_HAS_CUT != 0).then(|| Cut {
            seq: u64_at(p, RECORD_CUT_SEQ_OFFSET),
            pending: h.flags & RECORD_CUT_PENDING != 0,
            close_at: (close != (u64::MAX, u64::MAX)).then_some(close),
        }),
    };
    Some((h.seq, name.to_owned(), record))
}

#[cfg(test)]
mod tests {
    use walrus_storage::MemStorage;

    use super::*;

    #[test]
    fn records_survive_reopen_and_a_torn_newer_slot_falls_back_to_the_older() {
        let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let store = RecordStore::open(Arc::clone(&storage)).unwrap();
        assert_eq!(store.get("a"), TopicRecord::default());
        store
            .update("a", |r| r.meta = Some(b"vote-1".to_vec()))
            .unwrap();
        let cut = Cut {
            seq: 7,
            pending: true,
            close_at: Some((3, 4096)),
        };
        store.update("b", |r| r.cut = Some(cut)).unwrap();
        store
            .update("a", |r| r.meta = Some(b"vote-2".to_vec()))
            .unwrap();
        let too_big = vec![0u8; META_BYTES_MAX + 1];
        let err = store.update("a", |r| r.meta = Some(too_big)).unwrap_err();
        assert!(err.to_string().contains("512"), "{err}");

        let reopened = RecordStore::open(Arc::clone(&storage)).unwrap();
        assert_eq!(reopened.get("a").meta.as_deref(), Some(&b"vote-2"[..]));
        assert_eq!(reopened.get("b").cut, Some(cut));
        assert_eq!(reopened.pending_cuts().len(), 1);

        // Tear the newest slot of "a" (generation 2, half 0): the older one is the record.
        let file = storage.open(&record_file_name(0)).unwrap();
        file.write_at(32, &[0xFF; 8]).unwrap();
        let torn = RecordStore::open(Arc::clone(&storage)).unwrap();
        assert_eq!(torn.get("a").meta.as_deref(), Some(&b"vote-1"[..]));
    }
}
