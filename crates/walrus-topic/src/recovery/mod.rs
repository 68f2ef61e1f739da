//! Recovery: rebuild every topic's chain of blocks from the segment files of earlier runs.
//!
//! Each block starts with a header frame naming its topic and first sequence number. The
//! entries after it are scanned up to the end of written data (zeros, or a torn frame with
//! nothing valid after it). Entries may be missing before later valid ones, in a block or
//! between blocks: that is either damage to data that was durable, or a crash hole (unsynced
//! entries lost while later ones reached the disk). Every entry claims how much of its topic
//! was durable when it was written (`claim.rs`); a hole that some claim covers is damage,
//! reported as corruption with file and offset, and the entries after it are kept. Any other
//! hole ends the topic there, so that what recovery keeps is a prefix of what was appended.
//! A batch whose last entry is missing is cut whole. Every cut is zeroed and synced before
//! the instance accepts appends, so the next recovery sees the same state.

//!
//! The phases, in order: `scan` reads every block (`scan.rs`); then per topic (`chain.rs`):
//! settle holes inside blocks, build the chain behind and after the cursor (dropping copies
//! and blocks after a hole), trim a batch whose end is missing, report and discard what is
//! dropped, and cut torn tails before adopting the blocks.

mod chain;
mod finding;
mod scan;

use std::{collections::HashMap, sync::Arc};

use walrus_alloc::{RecoveredFile, SegmentFile};

pub use finding::{Finding, FindingKind};

use crate::{Result, block::Block};

/// A topic as found on disk.
#[derive(Debug, Default)]
pub(crate) struct RecoveredTopic {
    pub(crate) blocks: Vec<Arc<Block>>,
    pub(crate) next_seq: u64,
    /// Blocks recovery scanned (they had no valid seal), with the summary for their seal,
    /// which the open writes once its sync has made them durable.
    pub(crate) unsealed: Vec<(Arc<Block>, crate::seal::SealSummary)>,
}

/// What recovery found, for logs, stats and `walrus-ctl verify`.
#[derive(Debug, Default)]
pub(crate) struct RecoveryReport {
    pub(crate) topics: HashMap<String, RecoveredTopic>,
    pub(crate) corrupt_frames: u64,
    pub(crate) dropped_blocks: u64,
    pub(crate) cut_bytes: u64,
    pub(crate) findings: Vec<Finding>,
}

/// What the directory says about how the last instance ended.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hints {
    /// Nothing is written and no file is finished (so none can be deleted): the report says
    /// what a normal open would cut.
    pub(crate) read_only: bool,
    /// An earlier instance was poisoned by a failed sync: every block holding entries that no
    /// claim covers is written again, so that the sync after recovery really makes them
    /// durable (after a failed sync the kernel may keep pages readable that it will never
    /// write back).
    pub(crate) poisoned_before: bool,
    /// The last instance closed cleanly after a successful sync: all data was durable, so
    /// every hole is damage and a damaged tail is corruption, not a torn write.
    pub(crate) closed_cleanly: bool,
    /// Scan every block's data, even where a seal record says where its entries end.
    pub(crate) scan_sealed: bool,
}

/// Truncations that recovery must finish, by topic (`log/truncate.rs`).
pub(crate) type Cuts = HashMap<String, crate::topic_record::Cut>;

/// Scans `files`, adopts their live extents, cuts torn tails and partial batches durably, and
/// returns the topics. Every file is finished (and deleted if nothing in it is live).
///
/// `cursors` holds each topic's persisted cursor: blocks wholly behind it are consumed, and
/// the chain starts at the block holding it.
pub(crate) fn recover(
    files: &[RecoveredFile],
    cursors: &HashMap<String, u64>,
    hints: Hints,
    cuts: &Cuts,
) -> Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    let mut touched: Vec<Arc<SegmentFile>> = Vec::new();
    if !hints.read_only {
        close_cut_batches(files, cuts, &mut touched)?;
    }
    let mut scanned: HashMap<String, Vec<scan::ScannedBlock>> = HashMap::new();
    let mut buf = Vec::new();
    for recovered in files {
        for block in scan::scan_file(&recovered.file, &mut buf, hints, cuts, &mut report)? {
            scanned.entry(block.topic.clone()).or_default().push(block);
        }
    }
    for (name, mut blocks) in scanned {
        let cursor = cursors.get(&name).copied();
        if let Some(cut) = cuts.get(&name) {
            // Blocks that start at or after a truncation recovery finishes are removed whole.
            let (removed, kept) = blocks.into_iter().partition(|b| b.first_seq >= cut.seq);
            blocks = kept;
            chain::remove_truncated(removed, hints, &mut touched)?;
        }
        let topic = chain::recover_topic(&name, blocks, cursor, hints, &mut report, &mut touched)?;
        // Nothing left and nothing ever consumed: the same as a topic never written.
        if !topic.blocks.is_empty() || topic.next_seq > 0 {
            report.topics.insert(name, topic);
        }
    }
    // Cuts are durable before any append can land after them.
    for file in touched {
        if let Some(segment) = file.segment() {
            segment.sync()?;
        }
    }
    if !hints.read_only {
        for recovered in files {
            recovered.file.finish_recovery();
        }
    }
    Ok(report)
}

/// Step 3 of an interrupted truncation, first part: the entry before the cut ends its batch
/// (`log/truncate.rs`), before the scan decides which batches are whole.
fn close_cut_batches(
    files: &[RecoveredFile],
    cuts: &Cuts,
    touched: &mut Vec<Arc<SegmentFile>>,
) -> Result<()> {
    for cut in cuts.values() {
        let Some((file_seq, offset)) = cut.close_at else {
            continue;
        };
        let file = files.iter().map(|r| &r.file).find(|f| f.seq() == file_seq);
        if let Some(file) = file
            && let Some(segment) = file.segment()
            && crate::log::close_batch(segment.as_ref(), offset, cut.seq.saturating_sub(1))?
            && !touched.iter().any(|f| Arc::ptr_eq(f, file))
        {
            touched.push(Arc::clone(file));
        }
    }
    Ok(())
}
