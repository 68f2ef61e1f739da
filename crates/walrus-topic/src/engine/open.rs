//! The steps of opening an engine, in the order `Engine::open_inner` takes them: adopt the
//! segment files, read what the markers say about the last close, (recover), make what
//! recovery adopted durable and drop the markers, and build the topics with their cursors.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use fnv::FnvHashMap;
use walrus_alloc::{Allocator, RecoveredFile};
use walrus_storage::Storage;

use crate::{
    Result,
    cursor_store::LoadedCursor,
    format::{CLEAN_MARKER_NAME, POISON_MARKER_NAME},
    reader::TopicReader,
    recovery::{Finding, FindingKind, Hints, RecoveredTopic},
    topic::Topic,
};

/// Adopts the segment files; reports (and, unless read-only, removes) files whose creation a
/// crash interrupted, and reports files whose header is damaged (left untouched).
pub(super) fn adopt_files(
    storage: &Arc<dyn Storage>,
    alloc: &Allocator,
    read_only: bool,
) -> Result<(Vec<RecoveredFile>, Vec<Finding>)> {
    let (files, bad) = alloc.recover()?;
    // What an earlier process wrote may still sit in the page cache: synced after recovery.
    for recovered in &files {
        recovered.file.mark_dirty();
    }
    let mut unreadable = Vec::new();
    for (name, err) in &bad {
        let file = storage.dir().join(name);
        let kind = if matches!(err, walrus_alloc::Error::UnfinishedFile { .. }) {
            // Never held data: a crash interrupted its creation. Remove it (a read-only
            // open only reports it).
            tracing::info!(file = %file.display(), "removing a segment file never finished");
            if !read_only {
                storage.remove(name)?;
            }
            FindingKind::UnfinishedFile
        } else {
            tracing::warn!(error = %err, "segment file not recovered");
            FindingKind::DamagedFileHeader {
                reason: err.to_string(),
            }
        };
        unreadable.push(Finding {
            file,
            offset: 0,
            kind,
        });
    }
    Ok((files, unreadable))
}

/// What the marker files say about how the last instance ended.
pub(super) fn read_hints(
    storage: &dyn Storage,
    read_only: bool,
    scan_sealed: bool,
) -> Result<Hints> {
    let names = storage.list()?;
    let hints = Hints {
        read_only,
        scan_sealed: scan_sealed || read_only,
        poisoned_before: names.iter().any(|n| n == POISON_MARKER_NAME),
        closed_cleanly: names.iter().any(|n| n == CLEAN_MARKER_NAME),
    };
    if hints.poisoned_before {
        tracing::warn!("an earlier instance was poisoned: rewriting what is not known durable");
    }
    Ok(hints)
}

/// Makes what recovery adopted durable, then removes the markers, which describe the files
/// as recovery found them (appends change that).
pub(super) fn settle_after_recovery(
    storage: &dyn Storage,
    alloc: &Allocator,
    hints: Hints,
) -> Result<()> {
    // What recovery adopted may exist only in the page cache of the process that wrote it.
    // Make it durable before new appends land after it: otherwise a power cut could lose it
    // and leave a hole in front of later, acknowledged entries.
    alloc.sync_dirty()?;
    // Mutant clean_marker_kept: the clean-close marker outlives the open.
    let clean = !cfg!(walrus_mutant = "clean_marker_kept") && hints.closed_cleanly;
    for (present, name) in [
        (hints.poisoned_before, POISON_MARKER_NAME),
        (clean, CLEAN_MARKER_NAME),
    ] {
        if present {
            storage.remove(name)?;
        }
    }
    if hints.poisoned_before || clean {
        storage.sync_dir()?;
    }
    Ok(())
}

/// Every topic that recovery found or that has a persisted cursor, positioned at its cursor.
pub(super) fn build_topics(
    mut recovered: HashMap<String, RecoveredTopic>,
    loaded: &HashMap<String, LoadedCursor>,
    alloc: &Allocator,
) -> FnvHashMap<String, Arc<Topic>> {
    let mut names: Vec<String> = recovered.keys().chain(loaded.keys()).cloned().collect();
    names.sort();
    names.dedup();
    let mut topics = FnvHashMap::default();
    for name in names {
        let cursor = loaded.get(&name).copied();
        // A topic with a cursor but no blocks left: everything was consumed and deleted, and
        // numbering goes on from the cursor.
        let found = recovered.remove(&name).unwrap_or_else(|| RecoveredTopic {
            blocks: Vec::new(),
            next_seq: cursor.map_or(0, |c| c.cursor.next_seq),
            unsealed: Vec::new(),
        });
        let topic = position_topic((name.clone(), alloc.next_lane()), found, cursor);
        topics.insert(name, Arc::new(topic));
    }
    topics
}

/// Builds a topic from what recovery found and its persisted cursor.
fn position_topic(
    (name, lane): (String, usize),
    found: RecoveredTopic,
    cursor: Option<LoadedCursor>,
) -> Topic {
    let mut reader = TopicReader::default();
    let next_seq = found.next_seq;
    // Recovery already consumed the blocks wholly behind the cursor: the chain starts at
    // the block that holds it.
    let chain: VecDeque<_> = found.blocks.into();
    if let Some(loaded) = cursor {
        reader.slot = Some(loaded.slot);
        reader.generation = loaded.generation;
        reader.durable_half = loaded.half;
        reader.persisted_seq = Some(loaded.cursor.next_seq);
    }
    let target = cursor.map_or(0, |c| c.cursor.next_seq).min(next_seq);
    reader.next_seq = target.max(chain.front().map_or(target, |b| b.first_seq));
    reader.offset = match chain.front() {
        Some(block) => locate(block, reader.next_seq, cursor),
        None => 0,
    };
    Topic::new(name, lane, next_seq, chain, reader)
}

/// Offset in `block` of the entry with sequence number `seq` (or the block's end).
fn locate(block: &crate::block::Block, seq: u64, cursor: Option<LoadedCursor>) -> u64 {
    let (_, end) = block.visible();
    if seq <= block.first_seq {
        return block.data_start;
    }
    // The persisted hint is trusted only if the frame there carries the expected number.
    if let Some(c) = cursor.map(|c| c.cursor)
        && c.next_seq == seq
        && c.file_seq == block.extent.file().seq()
        && c.extent_offset == block.extent.offset()
        && c.offset <= end
        && crate::frames::seq_at(block, c.offset, end) == Some(seq)
    {
        return c.offset;
    }
    crate::frames::find_seq(block, seq, end).unwrap_or(end)
}
