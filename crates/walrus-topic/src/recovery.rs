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

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use walrus_alloc::{Extent, RecoveredFile, SegmentFile};
use walrus_storage::{Decoded, ScanEnd, ScanItem, Scanner, decode_frame, resync};

use crate::{
    Result,
    block::Block,
    format::{
        BLOCK_HEADER_KIND, ENTRY_KIND, FLAG_BATCH, FLAG_BATCH_END, TOPIC_NAME_BYTES_MAX,
        decode_claim, tag_matches, topic_tag,
    },
};

/// A topic as found on disk.
#[derive(Debug, Default)]
pub(crate) struct RecoveredTopic {
    pub(crate) blocks: Vec<Arc<Block>>,
    pub(crate) next_seq: u64,
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

/// One thing recovery found wrong on disk, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The segment file.
    pub file: PathBuf,
    /// File offset of the problem.
    pub offset: u64,
    /// What it is.
    pub kind: FindingKind,
}

/// The kinds of [`Finding`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// A damaged entry with valid entries after it: skipped, never returned.
    CorruptEntry {
        /// What was wrong with its bytes.
        error: String,
    },
    /// A damaged block header: the block was skipped.
    DamagedBlockHeader,
    /// A segment file whose header is damaged or unreadable: the file was not recovered
    /// (and is left untouched).
    DamagedFileHeader {
        /// What is wrong with it.
        reason: String,
    },
    /// A segment file that holds only zeros: a crash interrupted its creation before its
    /// header was durable, so it never held data. Removed.
    UnfinishedFile,
    /// Bytes after the last valid entry of a block (a torn write): cut.
    TornTail {
        /// Bytes cut.
        bytes: u64,
    },
    /// Damaged bytes after the last valid entry of a block although every write was durable
    /// (the last instance closed cleanly): corruption, cut like a torn tail so that appends
    /// go on after the last valid entry.
    DamagedTail {
        /// Bytes cut.
        bytes: u64,
    },
    /// Entries of a batch whose last entry never reached the disk: cut.
    PartialBatch {
        /// Bytes cut.
        bytes: u64,
    },
    /// A block that does not continue its topic (a hole before it): dropped.
    DroppedBlock {
        /// The block's topic.
        topic: String,
    },
    /// A second copy of entries the topic already holds: a block written to the wrong place
    /// (a misdirected write) or duplicated by the disk. The longer copy is kept, this one is
    /// dropped, and the blocks after it are kept.
    DuplicateBlock {
        /// The block's topic.
        topic: String,
        /// The sequence numbers the copy holds: `from..to`.
        from: u64,
        /// Sequence number after the copy's last entry.
        to: u64,
    },
    /// Entries that were durable (a later entry says so) but are gone: damage at the end of
    /// a block, or a whole block lost. The entries after them are kept.
    MissingEntries {
        /// The topic.
        topic: String,
        /// First missing sequence number.
        from: u64,
        /// Sequence number after the last missing one.
        to: u64,
    },
    /// Damaged data in a walrus-rust 0.2.0 file met while importing it: the entries it
    /// affects were not imported (the file keeps them, in `legacy-0.2.0/`).
    LegacyDamage {
        /// What is wrong, and what was left out.
        reason: String,
    },
}

impl Finding {
    /// Whether this is corruption of data (as opposed to a torn or partial tail, which
    /// crashes leave behind normally).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self.kind,
            FindingKind::CorruptEntry { .. }
                | FindingKind::DamagedBlockHeader
                | FindingKind::DamagedFileHeader { .. }
                | FindingKind::MissingEntries { .. }
                | FindingKind::DuplicateBlock { .. }
                | FindingKind::DamagedTail { .. }
                | FindingKind::LegacyDamage { .. }
        )
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = format!("{} at offset {}", self.file.display(), self.offset);
        match &self.kind {
            FindingKind::CorruptEntry { error } => write!(f, "corrupt entry in {at}: {error}"),
            FindingKind::DamagedBlockHeader => write!(f, "damaged block header in {at}"),
            FindingKind::DamagedFileHeader { reason } => {
                write!(f, "unreadable segment file {at}: {reason}")
            }
            FindingKind::TornTail { bytes } => write!(f, "torn tail of {bytes} bytes in {at}"),
            FindingKind::UnfinishedFile => write!(
                f,
                "segment file {} never finished (a crash interrupted its creation; a writable \
                 open removes it)",
                self.file.display()
            ),
            FindingKind::LegacyDamage { reason } => {
                write!(f, "damaged walrus-rust 0.2.0 data in {at}: {reason}")
            }
            FindingKind::DamagedTail { bytes } => write!(
                f,
                "damaged tail of {bytes} bytes of data that was durable (clean close) in {at}"
            ),
            FindingKind::PartialBatch { bytes } => {
                write!(f, "partial batch of {bytes} bytes in {at}")
            }
            FindingKind::DroppedBlock { topic } => {
                write!(f, "block of topic {topic:?} after a hole in {at}")
            }
            FindingKind::DuplicateBlock { topic, from, to } => write!(
                f,
                "misplaced or duplicated block of topic {topic:?} in {at}: entries {from}..{to} \
                 are already in another block (this copy dropped)"
            ),
            FindingKind::MissingEntries { topic, from, to } => write!(
                f,
                "entries {from}..{to} of topic {topic:?}, which were durable, lost to damage \
                 at the end of {at}"
            ),
        }
    }
}

/// How far a block's valid entries go (offsets are relative to the extent).
#[derive(Clone, Copy, Debug)]
struct Progress {
    /// Offset after the last valid frame, and the sequence number after it.
    end: u64,
    next_seq: u64,
    /// Offset after the last frame that completes something (a single entry or a batch's last
    /// entry), and the sequence number after it.
    complete_end: u64,
    complete_next_seq: u64,
    any_complete: bool,
}

/// Entries missing inside a block before valid ones: damage, or a crash hole.
#[derive(Debug)]
struct Gap {
    /// Where the damaged or zeroed bytes start.
    offset: u64,
    /// What is wrong there.
    error: String,
    /// The block's progress before the gap, which it ends at if the gap is a crash hole.
    before: Progress,
}

#[derive(Debug)]
struct ScannedBlock {
    extent: Arc<Extent>,
    topic: String,
    first_seq: u64,
    data_start: u64,
    progress: Progress,
    /// Holes inside the block, in offset order, until `settle_gaps` decides them.
    gaps: Vec<Gap>,
    /// The largest durable prefix any of the block's entries claims.
    max_claim: u64,
    /// Offset after the last valid frame the scan found, before any cut.
    scanned_end: u64,
    /// Offset after the last non-zero byte of the extent.
    dirty_end: u64,
    /// The file, for findings.
    path: PathBuf,
}

impl ScannedBlock {
    fn has_partial_batch(&self) -> bool {
        self.progress.end > self.progress.complete_end
    }

    fn next_seq(&self) -> u64 {
        self.progress.next_seq
    }
}

const HEADER_PROBE_BYTES: usize = walrus_storage::frame_len(TOPIC_NAME_BYTES_MAX);

/// Scans `files`, adopts their live extents, cuts torn tails and partial batches durably, and
/// returns the topics. Every file is finished (and deleted if nothing in it is live).
///
/// `cursors` holds each topic's persisted cursor: blocks wholly behind it are consumed, and
/// the chain starts at the block holding it.
///
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
}

pub(crate) fn recover(
    files: &[RecoveredFile],
    cursors: &HashMap<String, u64>,
    hints: Hints,
) -> Result<RecoveryReport> {
    let read_only = hints.read_only;
    let mut report = RecoveryReport::default();
    let mut scanned: HashMap<String, Vec<ScannedBlock>> = HashMap::new();
    let mut buf = Vec::new();
    for recovered in files {
        for block in scan_file(&recovered.file, &mut buf, &mut report)? {
            scanned.entry(block.topic.clone()).or_default().push(block);
        }
    }
    let mut touched: Vec<Arc<SegmentFile>> = Vec::new();
    for (name, mut blocks) in scanned {
        let tag = topic_tag(&name);
        blocks.sort_by_key(|b| (b.first_seq, b.extent.file().seq(), b.extent.first_block()));
        let cursor = cursors.get(&name).copied();
        // Claims are true whichever block carries them: the entries they cover were durable.
        let max_claim = if hints.closed_cleanly {
            u64::MAX
        } else {
            blocks.iter().map(|b| b.max_claim).max().unwrap_or(0)
        };
        for block in &mut blocks {
            settle_gaps(block, max_claim, &mut report);
        }
        // `all` is the blocks wholly behind the durable cursor (consumed in an earlier run,
        // their files not yet deleted; gaps between them are deleted files, not holes),
        // followed by the chain, which must start at the cursor and have no holes.
        let mut all: Vec<ScannedBlock> = Vec::new();
        let mut behind = 0;
        let mut dropped: Vec<ScannedBlock> = Vec::new();
        let mut duplicates: Vec<ScannedBlock> = Vec::new();
        for block in blocks {
            if !dropped.is_empty() {
                dropped.push(block);
                continue;
            }
            if all.len() == behind && cursor.is_some_and(|c| block.next_seq() <= c) {
                all.push(block);
                behind += 1;
                continue;
            }
            // Blocks of a topic never share a sequence number: one that overlaps the block
            // before it is a copy in the wrong place (a misdirected or duplicated write).
            // Keep the longer copy and go on, so the blocks after it are not taken for
            // ones after a hole.
            if let Some(prev) = all[behind..].last()
                && block.first_seq < prev.next_seq()
            {
                if block.first_seq == prev.first_seq && block.next_seq() > prev.next_seq() {
                    duplicates.extend(all.pop());
                    all.push(block);
                } else {
                    duplicates.push(block);
                }
                continue;
            }
            let prev = all[behind..].last();
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
                    topic: name.clone(),
                    from: expected,
                    to: block.first_seq,
                };
                let at = match prev {
                    Some(prev) => finding(prev, prev.progress.end, kind),
                    None => finding(&block, 0, kind),
                };
                tracing::warn!(topic = %name, "{at}");
                report.corrupt_frames += 1;
                report.findings.push(at);
            }
            if continues || damaged {
                all.push(block);
            } else {
                dropped.push(block);
            }
        }
        if !dropped.is_empty() {
            tracing::warn!(topic = %name, blocks = dropped.len(), "hole in topic: dropping later blocks");
        }
        // A batch whose end never reached the disk: drop it whole, even across blocks. A
        // last block with nothing complete in it, right after a block that ends inside a
        // batch, holds only that batch's continuation (possibly nothing at all). Blocks behind
        // the cursor are consumed whatever they hold: a batch they start was read whole (or
        // lost with the power after its cursor was durable) and is never read again.
        while all.len() > behind
            && let Some(last) = all.last()
        {
            let count = all.len();
            let prev_partial = count >= 2
                && all[count - 2].next_seq() == last.first_seq
                && all[count - 2].has_partial_batch();
            if !last.progress.any_complete && prev_partial {
                dropped.extend(all.pop());
                behind = behind.min(all.len());
                continue;
            }
            if last.has_partial_batch() {
                let last = all.last_mut().expect("checked above");
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
        for block in &duplicates {
            let kind = FindingKind::DuplicateBlock {
                topic: name.clone(),
                from: block.first_seq,
                to: block.next_seq(),
            };
            let at = finding(block, 0, kind);
            tracing::warn!(topic = %name, "{at}");
            report.corrupt_frames += 1;
            report.dropped_blocks += 1;
            report.findings.push(at);
            if !read_only {
                discard(block, &mut touched)?;
            }
        }
        for block in &dropped {
            report.dropped_blocks += 1;
            report.findings.push(finding(
                block,
                0,
                FindingKind::DroppedBlock {
                    topic: name.clone(),
                },
            ));
            if !read_only {
                discard(block, &mut touched)?;
            }
        }
        // Numbering goes on after the last entry kept, but never below the cursor: entries
        // a reader had consumed may be gone (their files deleted, or lost with the power
        // before they were durable), and their numbers are not reused.
        let data_end = all.last().map_or(0, ScannedBlock::next_seq);
        let next_seq = data_end.max(cursor.unwrap_or(0));
        let mut topic = RecoveredTopic {
            blocks: Vec::new(),
            next_seq,
        };
        for (index, block) in all.into_iter().enumerate() {
            let end = block.progress.end;
            if block.dirty_end > end {
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
                        .push(finding(&block, block.scanned_end, kind));
                }
                if !read_only {
                    // Mutant torn_tail_not_cut: leaves torn tails and partial batches on disk.
                    if !cfg!(walrus_mutant = "torn_tail_not_cut") {
                        zero(&block.extent, end, block.dirty_end)?;
                    }
                    remember(&mut touched, block.extent.file());
                }
            }
            // Behind the cursor (also a block the cuts left ending at or before it): consumed.
            if index < behind || block.next_seq() <= cursor.unwrap_or(0) {
                if !read_only {
                    block.extent.consume();
                }
                continue;
            }
            if hints.poisoned_before && !read_only && block.next_seq() > max_claim {
                rewrite(&block.extent, end)?;
                remember(&mut touched, block.extent.file());
            }
            topic.blocks.push(Arc::new(Block::new(
                block.extent,
                block.first_seq,
                block.data_start,
                tag,
                end,
                true,
            )));
        }
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
    if !read_only {
        for recovered in files {
            recovered.file.finish_recovery();
        }
    }
    Ok(report)
}

fn finding(block: &ScannedBlock, offset: u64, kind: FindingKind) -> Finding {
    Finding {
        file: block.path.clone(),
        offset: block.extent.offset() + offset,
        kind,
    }
}

/// Takes a dropped block out of the topic for good: its header zeroed (synced with the other
/// cuts), its extent given up so that its file can be deleted.
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

/// Zeroes a dropped block's header so no later recovery finds it again.
fn neutralize(block: &ScannedBlock) -> Result<()> {
    zero(&block.extent, 0, block.data_start)
}

fn scan_file(
    file: &Arc<SegmentFile>,
    buf: &mut Vec<u8>,
    report: &mut RecoveryReport,
) -> Result<Vec<ScannedBlock>> {
    let Some(segment) = file.segment() else {
        return Ok(Vec::new());
    };
    let mut blocks = Vec::new();
    let mut index = 0u32;
    while index < file.block_count() {
        let offset = file.block_offset(index);
        let mut probe = [0u8; HEADER_PROBE_BYTES];
        let probe_len = (file.block_bytes() as usize).min(HEADER_PROBE_BYTES);
        segment.read_at(offset, &mut probe[..probe_len])?;
        let header = match decode_frame(&probe[..probe_len]) {
            Decoded::Zeroed => {
                index += 1;
                continue;
            }
            Decoded::Frame(frame) if frame.header.kind == BLOCK_HEADER_KIND => frame,
            Decoded::Frame(_) | Decoded::Invalid(_) => {
                damaged_header(report, segment.path(), offset, "damaged block header");
                index += 1;
                continue;
            }
        };
        let extent_blocks = header.header.aux.max(1);
        let name = std::str::from_utf8(header.payload).ok().map(str::to_owned);
        // The extent lies inside the file, and the header frame, padding included, inside the
        // extent (with a block size that is not a multiple of 8, a header that a writer never
        // made could end in padding past it).
        let fits = index
            .checked_add(extent_blocks)
            .is_some_and(|end| end <= file.block_count())
            && header.frame_len as u64 <= u64::from(extent_blocks) * file.block_bytes();
        let (Some(name), true) = (name, fits) else {
            damaged_header(
                report,
                segment.path(),
                offset,
                "block header with bad topic or size",
            );
            index += 1;
            continue;
        };
        let Some(extent) = file.adopt_extent(index, extent_blocks) else {
            index += 1;
            continue;
        };
        let data_start = header.frame_len as u64;
        let len = read_used_part(
            segment.as_ref(),
            extent.offset() + data_start,
            (extent.len() - data_start) as usize,
            buf,
        )?;
        blocks.push(scan_block(
            extent,
            name,
            header.header.seq,
            data_start,
            &buf[..len],
            segment.path(),
            report,
        ));
        index += extent_blocks;
    }
    Ok(blocks)
}

/// Counts, logs and reports a block header that cannot be used; the block is skipped.
fn damaged_header(report: &mut RecoveryReport, path: &std::path::Path, offset: u64, what: &str) {
    report.corrupt_frames += 1;
    tracing::warn!(file = %path.display(), offset, "{what}: block skipped");
    let file = path.to_path_buf();
    report.findings.push(Finding {
        file,
        offset,
        kind: FindingKind::DamagedBlockHeader,
    });
}

/// Bytes read first from each block; most blocks end (in zeros) well before their size.
const SCAN_CHUNK_BYTES: usize = 256 * 1024;

/// Zeros that must follow the last frame read before the rest of a region is taken to be
/// unwritten: a shorter run may be a damaged (zeroed) stretch with entries after it.
const ZERO_MARGIN_BYTES: usize = 64 * 1024;

/// Reads the written part of a region of `total` bytes at `offset` into `buf`, growing the
/// read fourfold until the frames end in a long enough run of zeros or the region ends;
/// returns the bytes read. Reading only what is used keeps recovery proportional to the
/// data, not to block sizes.
fn read_used_part(
    segment: &dyn walrus_storage::Segment,
    offset: u64,
    total: usize,
    buf: &mut Vec<u8>,
) -> Result<usize> {
    let mut len = total.min(SCAN_CHUNK_BYTES);
    buf.clear();
    buf.resize(len, 0);
    segment.read_at(offset, &mut buf[..len])?;
    loop {
        let mut scanner = Scanner::new(&buf[..len], 0);
        scanner.by_ref().for_each(drop);
        let unwritten_after = match scanner.end() {
            Some(ScanEnd::Zeroed { offset }) => {
                let zeros = offset as usize;
                len - zeros >= ZERO_MARGIN_BYTES && buf[zeros..len].iter().all(|b| *b == 0)
            }
            _ => false,
        };
        if unwritten_after || len == total {
            return Ok(len);
        }
        let grown = total.min(len.saturating_mul(4));
        buf.resize(grown, 0);
        segment.read_at(offset + len as u64, &mut buf[len..grown])?;
        len = grown;
    }
}

fn scan_block(
    extent: Arc<Extent>,
    topic: String,
    first_seq: u64,
    data_start: u64,
    buf: &[u8],
    path: &std::path::Path,
    report: &mut RecoveryReport,
) -> ScannedBlock {
    let tag = topic_tag(&topic);
    let progress = Progress {
        end: data_start,
        next_seq: first_seq,
        complete_end: data_start,
        complete_next_seq: first_seq,
        any_complete: false,
    };
    let mut block = ScannedBlock {
        extent,
        topic,
        first_seq,
        data_start,
        progress,
        gaps: Vec::new(),
        max_claim: 0,
        scanned_end: data_start,
        path: path.to_path_buf(),
        dirty_end: data_start
            + buf
                .iter()
                .rposition(|b| *b != 0)
                .map_or(0, |p| p as u64 + 1),
    };
    let file_base = block.extent.offset();
    // Damage (or zeros) seen since the last valid frame: where it starts and what it is.
    let mut damage: Option<(u64, String)> = None;
    let mut start = 0usize;
    'scan: loop {
        let mut scanner = Scanner::new(&buf[start..], data_start + start as u64);
        for item in scanner.by_ref() {
            match item {
                ScanItem::Frame { offset, frame } => {
                    let header = frame.header;
                    let expected = block.progress.next_seq;
                    // An entry never has the largest number (appends leave it for the next
                    // sequence number), so such a frame is garbage, like stale bytes.
                    if header.kind != ENTRY_KIND
                        || !tag_matches(header.flags, tag)
                        || header.seq < expected
                        || header.seq == u64::MAX
                    {
                        // Not an entry of this block (stale bytes, or another topic's entry
                        // written to the wrong place): treat as the end.
                        break 'scan;
                    }
                    if header.seq > expected {
                        let (at, error) = damage.take().unwrap_or_else(|| {
                            (
                                offset,
                                format!("sequence jumps from {expected} to {}", header.seq),
                            )
                        });
                        block.gaps.push(Gap {
                            offset: at,
                            error,
                            before: block.progress,
                        });
                    } else if let Some((at, error)) = damage.take() {
                        // Damaged bytes between two consecutive entries: nothing is missing,
                        // so it is plain corruption.
                        report_corrupt(report, path, file_base + at, &error);
                    }
                    let progress = &mut block.progress;
                    progress.end = offset + frame.frame_len as u64;
                    progress.next_seq = header.seq + 1;
                    if header.flags & FLAG_BATCH == 0 || header.flags & FLAG_BATCH_END != 0 {
                        progress.complete_end = progress.end;
                        progress.complete_next_seq = progress.next_seq;
                        progress.any_complete = true;
                    }
                    block.max_claim = block.max_claim.max(decode_claim(header.seq, header.aux));
                }
                ScanItem::Corrupt { offset, error, .. } => {
                    damage.get_or_insert((offset, error.to_string()));
                }
            }
        }
        // Zeros with valid frames after them: a zeroed stretch inside the data, not its end.
        if let Some(ScanEnd::Zeroed { offset }) = scanner.end()
            && block.dirty_end > offset
            && let Some(next) = resync(buf, (offset - data_start) as usize)
        {
            damage.get_or_insert((offset, "zeroed bytes".to_owned()));
            start = next;
            continue;
        }
        break;
    }
    block.scanned_end = block.progress.end;
    block
}

/// Decides each hole inside `block`: damage when some claim of the topic (`max_claim`) says
/// the first missing entry was durable, reported and skipped; otherwise a crash hole, where
/// the block ends (what follows is cut like a torn tail).
fn settle_gaps(block: &mut ScannedBlock, max_claim: u64, report: &mut RecoveryReport) {
    for gap in std::mem::take(&mut block.gaps) {
        if max_claim > gap.before.next_seq {
            let at = block.extent.offset() + gap.offset;
            report_corrupt(report, &block.path, at, &gap.error);
        } else {
            tracing::debug!(
                file = %block.path.display(),
                offset = block.extent.offset() + gap.offset,
                "hole left by a crash: the block ends before it"
            );
            block.progress = gap.before;
            block.scanned_end = gap.before.end;
            break;
        }
    }
}

/// Counts, logs and reports a damaged entry that recovery skipped.
fn report_corrupt(report: &mut RecoveryReport, path: &std::path::Path, offset: u64, error: &str) {
    report.corrupt_frames += 1;
    tracing::warn!(file = %path.display(), offset, %error, "corrupt entry skipped at recovery");
    report.findings.push(Finding {
        file: path.to_path_buf(),
        offset,
        kind: FindingKind::CorruptEntry {
            error: error.to_owned(),
        },
    });
}
