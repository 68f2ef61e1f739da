//! Phase two of recovery, per topic: decide what the scanned blocks of one topic keep.
//!
//! Each step is a function, called in this order by [`recover_topic`]:
//! [`settle_holes`], [`build_chain`], [`trim_partial_batch`], [`report_and_discard`] and
//! [`cut_and_adopt`].

use std::sync::Arc;

use walrus_alloc::{Extent, SegmentFile};

use super::{
    Finding, FindingKind, Hints, RecoveredTopic, RecoveryReport,
    scan::{ScannedBlock, settle_gaps},
};
use crate::{Result, block::Block, format::topic_tag, seal::SealSummary};

/// A topic's blocks sorted out: `all` is the blocks wholly behind the durable cursor (the
/// first `behind`: consumed in an earlier run, their files not yet deleted; gaps between them
/// are deleted files, not holes), followed by the chain, which starts at the cursor and has no
/// holes. `dropped` follow a hole; `duplicates` are second copies of entries.
#[derive(Debug, Default)]
struct Sorted {
    all: Vec<ScannedBlock>,
    behind: usize,
    dropped: Vec<ScannedBlock>,
    duplicates: Vec<ScannedBlock>,
}

/// Recovers one topic from its scanned blocks.
pub(super) fn recover_topic(
    name: &str,
    mut blocks: Vec<ScannedBlock>,
    cursor: Option<u64>,
    hints: Hints,
    report: &mut RecoveryReport,
    touched: &mut Vec<Arc<SegmentFile>>,
) -> Result<RecoveredTopic> {
    blocks.sort_by_key(|b| (b.first_seq, b.extent.file().seq(), b.extent.first_block()));
    let max_claim = settle_holes(&mut blocks, hints, report);
    let mut sorted = build_chain(name, blocks, cursor, max_claim, report);
    trim_partial_batch(&mut sorted, report);
    report_and_discard(name, &sorted, hints, report, touched)?;
    cut_and_adopt(name, sorted, cursor, max_claim, hints, report, touched)
}

/// Decides every hole inside a block (damage if a claim covers it, else the block ends
/// there); returns the largest claim of the topic, which every later step uses.
fn settle_holes(blocks: &mut [ScannedBlock], hints: Hints, report: &mut RecoveryReport) -> u64 {
    // Claims are true whichever block carries them: the entries they cover were durable.
    let max_claim = if hints.closed_cleanly {
        u64::MAX
    } else {
        blocks.iter().map(|b| b.max_claim).max().unwrap_or(0)
    };
    for block in blocks.iter_mut() {
        settle_gaps(block, max_claim, report);
    }
    max_claim
}

/// Orders the blocks into the chain: blocks behind the cursor, then blocks that continue the
/// topic; copies of entries it already has are set aside, and everything after a hole that
/// no claim covers is dropped.
fn build_chain(
    name: &str,
    blocks: Vec<ScannedBlock>,
    cursor: Option<u64>,
    max_claim: u64,
    report: &mut RecoveryReport,
) -> Sorted {
    let mut s = Sorted::default();
    for block in blocks {
        if !s.dropped.is_empty() {
            s.dropped.push(block);
            continue;
        }
        if s.all.len() == s.behind && cursor.is_some_and(|c| block.next_seq() <= c) {
            s.all.push(block);
            s.behind += 1;
            continue;
        }
        // Blocks of a topic never share a sequence number: one that overlaps the block
        // before it is a copy in the wrong place (a misdirected or duplicated write).
        // Keep the longer copy and go on, so the blocks after it are not taken for
        // ones after a hole.
        if let Some(prev) = s.all[s.behind..].last()
            && block.first_seq < prev.next_seq()
        {
            if block.first_seq == prev.first_seq && block.next_seq() > prev.next_seq() {
                s.duplicates.extend(s.all.pop());
                s.all.push(block);
            } else {
                s.duplicates.push(block);
            }
            continue;
        }
        if continues_or_damaged(name, &s.all[s.behind..], &block, cursor, max_claim, report) {
            s.all.push(block);
        } else {
            s.dropped.push(block);
        }
    }
    if !s.dropped.is_empty() {
        tracing::warn!(topic = %name, blocks = s.dropped.len(), "hole in topic: dropping later blocks");
    }
    s
}

/// Whether `block` belongs in the chain after `chain`: it continues it, or the entries
/// missing before it were durable (a claim says so), which is damage, reported here.
fn continues_or_damaged(
    name: &str,
    chain: &[ScannedBlock],
    block: &ScannedBlock,
    cursor: Option<u64>,
    max_claim: u64,
    report: &mut RecoveryReport,
) -> bool {
    let prev = chain.last();
    let expected = prev.map_or(cursor.unwrap_or(0), ScannedBlock::next_seq);
    let continues = match prev {
        Some(prev) => prev.next_seq() == block.first_seq,
        // The first unconsumed block must hold the cursor's entry (or the topic's first
        // entry when nothing was ever consumed): starting after it means the entries
        // in between were lost.
        None => block.first_seq <= expected,
    };
    // Entries missing before this block that a claim says were durable: damage (the
    // end of the previous block, or a whole block with a damaged header), reported;
    // the chain goes on. Without such a claim it is a crash hole.
    let damaged = !continues && block.first_seq > expected && max_claim > expected;
    if damaged {
        let kind = FindingKind::MissingEntries {
            topic: name.to_owned(),
            from: expected,
            to: block.first_seq,
        };
        let at = match prev {
            Some(prev) => finding(prev, prev.progress.end, kind),
            None => finding(block, 0, kind),
        };
        tracing::warn!(topic = %name, "{at}");
        report.corrupt_frames += 1;
        report.findings.push(at);
    }
    continues || damaged
}

/// A batch whose end never reached the disk: drop it whole, even across blocks. A last
/// block with nothing complete in it, right after a block that ends inside a batch, holds
/// only that batch's continuation (possibly nothing at all). Blocks behind the cursor are
/// consumed whatever they hold: a batch they start was read whole (or lost with the power
/// after its cursor was durable) and is never read again.
fn trim_partial_batch(s: &mut Sorted, report: &mut RecoveryReport) {
    while s.all.len() > s.behind
        && let Some(last) = s.all.last()
    {
        let count = s.all.len();
        let prev_partial = count >= 2
            && s.all[count - 2].next_seq() == last.first_seq
            && s.all[count - 2].has_partial_batch();
        if !last.progress.any_complete && prev_partial {
            s.dropped.extend(s.all.pop());
            s.behind = s.behind.min(s.all.len());
            continue;
        }
        if last.has_partial_batch() {
            let last = s.all.last_mut().expect("checked above");
            let progress = &mut last.progress;
            let bytes = progress.end - progress.complete_end;
            let at = progress.complete_end;
            progress.end = progress.complete_end;
            progress.next_seq = progress.complete_next_seq;
            report
                .findings
                .push(finding(last, at, FindingKind::PartialBatch { bytes }));
        }
        break;
    }
}

/// Reports the duplicate and dropped blocks and takes them out of the topic for good.
fn report_and_discard(
    name: &str,
    s: &Sorted,
    hints: Hints,
    report: &mut RecoveryReport,
    touched: &mut Vec<Arc<SegmentFile>>,
) -> Result<()> {
    for block in &s.duplicates {
        let kind = FindingKind::DuplicateBlock {
            topic: name.to_owned(),
            from: block.first_seq,
            to: block.next_seq(),
        };
        let at = finding(block, 0, kind);
        tracing::warn!(topic = %name, "{at}");
        report.corrupt_frames += 1;
        report.dropped_blocks += 1;
        report.findings.push(at);
        if !hints.read_only {
            discard(block, touched)?;
        }
    }
    for block in &s.dropped {
        report.dropped_blocks += 1;
        let kind = FindingKind::DroppedBlock {
            topic: name.to_owned(),
        };
        report.findings.push(finding(block, 0, kind));
        if !hints.read_only {
            discard(block, touched)?;
        }
    }
    Ok(())
}

/// Cuts each kept block's torn or damaged tail, consumes the blocks behind the cursor,
/// rewrites what a poisoned instance may not have made durable, and adopts the rest as the
/// topic's chain.
fn cut_and_adopt(
    name: &str,
    s: Sorted,
    cursor: Option<u64>,
    max_claim: u64,
    hints: Hints,
    report: &mut RecoveryReport,
    touched: &mut Vec<Arc<SegmentFile>>,
) -> Result<RecoveredTopic> {
    let tag = topic_tag(name);
    // Numbering goes on after the last entry kept, but never below the cursor: entries
    // a reader had consumed may be gone (their files deleted, or lost with the power
    // before they were durable), and their numbers are not reused.
    let data_end = s.all.last().map_or(0, ScannedBlock::next_seq);
    let mut topic = RecoveredTopic {
        blocks: Vec::new(),
        next_seq: data_end.max(cursor.unwrap_or(0)),
        unsealed: Vec::new(),
    };
    for (index, block) in s.all.into_iter().enumerate() {
        let end = block.progress.end;
        cut_tail(&block, hints, report, touched)?;
        // Behind the cursor (also a block the cuts left ending at or before it): consumed.
        if index < s.behind || block.next_seq() <= cursor.unwrap_or(0) {
            if !hints.read_only {
                block.extent.consume();
            }
            continue;
        }
        if hints.poisoned_before && !hints.read_only && block.next_seq() > max_claim {
            rewrite(&block.extent, end)?;
            remember(touched, block.extent.file());
        }
        let summary = summary_of(&block);
        let adopted = Arc::new(Block::new(
            block.extent,
            block.first_seq,
            block.data_start,
            tag,
            end,
            true,
        ));
        if !block.sealed {
            topic.unsealed.push((Arc::clone(&adopted), summary));
        }
        topic.blocks.push(adopted);
    }
    Ok(topic)
}

/// The seal summary of a block as recovery keeps it.
fn summary_of(block: &ScannedBlock) -> SealSummary {
    let p = block.progress;
    SealSummary {
        first_seq: block.first_seq,
        end: p.end,
        next_seq: p.next_seq,
        complete_end: p.complete_end,
        complete_next_seq: p.complete_next_seq,
        any_complete: p.any_complete,
        max_claim: block.max_claim,
    }
}

/// Zeroes what lies after a block's last kept entry, reporting a torn write (or, after a
/// clean close, damage).
fn cut_tail(
    block: &ScannedBlock,
    hints: Hints,
    report: &mut RecoveryReport,
    touched: &mut Vec<Arc<SegmentFile>>,
) -> Result<()> {
    let end = block.progress.end;
    if block.dirty_end <= end {
        return Ok(());
    }
    report.cut_bytes += block.dirty_end - end;
    let torn = block.dirty_end.saturating_sub(end.max(block.scanned_end));
    if torn > 0 {
        // No write was in flight at a clean close: then it is damage, not a tear.
        let kind = if hints.closed_cleanly {
            report.corrupt_frames += 1;
            tracing::warn!(file = %block.path.display(), "damaged tail of durable data");
            FindingKind::DamagedTail { bytes: torn }
        } else {
            FindingKind::TornTail { bytes: torn }
        };
        report
            .findings
            .push(finding(block, block.scanned_end, kind));
    }
    if !hints.read_only {
        // Mutant torn_tail_not_cut: leaves torn tails and partial batches on disk.
        if !cfg!(walrus_mutant = "torn_tail_not_cut") {
            zero(&block.extent, end, block.dirty_end)?;
        }
        remember(touched, block.extent.file());
    }
    Ok(())
}

fn finding(block: &ScannedBlock, offset: u64, kind: FindingKind) -> Finding {
    Finding {
        file: block.path.clone(),
        offset: block.extent.offset() + offset,
        kind,
    }
}

/// Takes the blocks an interrupted truncation removes out of the topic for good, without
/// reporting them (they are not damage): their headers are flagged removed, as the
/// truncation does, and their extents given up.
pub(super) fn remove_truncated(
    blocks: Vec<ScannedBlock>,
    hints: Hints,
    touched: &mut Vec<Arc<SegmentFile>>,
) -> Result<()> {
    if hints.read_only {
        return Ok(());
    }
    for block in &blocks {
        if let Some(segment) = block.extent.file().segment() {
            let blocks = block.extent.block_count();
            let flags = crate::format::BLOCK_FLAG_REMOVED;
            let header = crate::block::header_frame(&block.topic, block.first_seq, blocks, flags);
            segment.write_at(block.extent.offset(), &header)?;
            remember(touched, block.extent.file());
        }
        block.extent.abandon();
    }
    Ok(())
}

/// Takes a dropped block out of the topic for good: its header flagged removed (synced with
/// the other cuts; later recoveries skip its whole extent, as after a truncation, instead of
/// probing its data for headers), its extent given up so that its file can be deleted.
fn discard(block: &ScannedBlock, touched: &mut Vec<Arc<SegmentFile>>) -> Result<()> {
    neutralize(block)?;
    remember(touched, block.extent.file());
    block.extent.abandon();
    Ok(())
}

fn remember(touched: &mut Vec<Arc<SegmentFile>>, file: &Arc<SegmentFile>) {
    if !touched.iter().any(|f| Arc::ptr_eq(f, file)) {
        touched.push(Arc::clone(file));
    }
}

fn zero(extent: &Extent, start: u64, end: u64) -> Result<()> {
    if let Some(segment) = extent.file().segment() {
        let zeros = vec![0u8; (end - start) as usize];
        segment.write_at(extent.offset() + start, &zeros)?;
    }
    Ok(())
}

/// Writes the first `end` bytes of `extent` again, with what they hold now.
fn rewrite(extent: &Extent, end: u64) -> Result<()> {
    if let Some(segment) = extent.file().segment() {
        let mut bytes = vec![0u8; end as usize];
        segment.read_at(extent.offset(), &mut bytes)?;
        segment.write_at(extent.offset(), &bytes)?;
    }
    Ok(())
}

/// Flags a dropped block's header removed so no later recovery reads it again. The new
/// header has the old one's length (same topic name), so no entry byte is touched.
fn neutralize(block: &ScannedBlock) -> Result<()> {
    if let Some(segment) = block.extent.file().segment() {
        let blocks = block.extent.block_count();
        let flags = crate::format::BLOCK_FLAG_REMOVED;
        let header = crate::block::header_frame(&block.topic, block.first_seq, blocks, flags);
        debug_assert_eq!(header.len() as u64, block.data_start);
        segment.write_at(block.extent.offset(), &header)?;
    }
    Ok(())
}
