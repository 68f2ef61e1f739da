//! Recovery: rebuild every topic's chain of blocks from the segment files of earlier runs.
//!
//! Each block starts with a header frame naming its topic and first sequence number. The
//! entries after it are scanned up to the first zeroed or torn frame; damage followed by valid
//! frames is corruption, logged with file and offset and skipped. Per topic, blocks must
//! continue each other's sequence numbers: after a hole (an earlier block lost data that a
//! later one kept) the later blocks are dropped, so recovered topics are always a prefix of
//! what was appended. A batch whose last entry is missing is cut whole. Every cut is zeroed
//! and synced before the instance accepts appends, so the next recovery sees the same state.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use walrus_alloc::{Extent, RecoveredFile, SegmentFile};
use walrus_storage::{Decoded, ScanEnd, ScanItem, Scanner, decode_frame};

use crate::{
    Result,
    block::Block,
    format::{BLOCK_HEADER_KIND, ENTRY_KIND, FLAG_BATCH, FLAG_BATCH_END, TOPIC_NAME_BYTES_MAX},
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
    /// Bytes after the last valid entry of a block (a torn write): cut.
    TornTail {
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
            FindingKind::PartialBatch { bytes } => {
                write!(f, "partial batch of {bytes} bytes in {at}")
            }
            FindingKind::DroppedBlock { topic } => {
                write!(f, "block of topic {topic:?} after a hole in {at}")
            }
        }
    }
}

#[derive(Debug)]
struct ScannedBlock {
    extent: Arc<Extent>,
    topic: String,
    first_seq: u64,
    data_start: u64,
    /// Offset after the last valid frame, and the sequence number after it.
    end: u64,
    next_seq: u64,
    /// Offset after the last frame that completes something (a single entry or a batch's last
    /// entry), and the sequence number after it.
    complete_end: u64,
    complete_next_seq: u64,
    any_complete: bool,
    /// Offset after the last valid frame the scan found, before any cut.
    scanned_end: u64,
    /// Offset after the last non-zero byte of the extent.
    dirty_end: u64,
    /// The file, for findings.
    path: PathBuf,
}

impl ScannedBlock {
    fn has_partial_batch(&self) -> bool {
        self.end > self.complete_end
    }
}

const HEADER_PROBE_BYTES: usize = walrus_storage::frame_len(TOPIC_NAME_BYTES_MAX);

/// Scans `files`, adopts their live extents, cuts torn tails and partial batches durably, and
/// returns the topics. Every file is finished (and deleted if nothing in it is live).
///
/// `cursors` holds each topic's persisted cursor: blocks wholly behind it are consumed, and
/// the chain starts at the block holding it.
///
/// With `read_only`, nothing is written and no file is finished (so none can be deleted):
/// the report says what a normal open would cut.
pub(crate) fn recover(
    files: &[RecoveredFile],
    cursors: &HashMap<String, u64>,
    read_only: bool,
) -> Result<RecoveryReport> {
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
        blocks.sort_by_key(|b| (b.first_seq, b.extent.file().seq(), b.extent.first_block()));
        let cursor = cursors.get(&name).copied();
        // `all` is the blocks wholly behind the durable cursor (consumed in an earlier run,
        // their files not yet deleted; gaps between them are deleted files, not holes),
        // followed by the chain, which must start at the cursor and have no holes.
        let mut all: Vec<ScannedBlock> = Vec::new();
        let mut behind = 0;
        let mut dropped: Vec<ScannedBlock> = Vec::new();
        for block in blocks {
            if !dropped.is_empty() {
                dropped.push(block);
                continue;
            }
            if all.len() == behind && cursor.is_some_and(|c| block.next_seq <= c) {
                all.push(block);
                behind += 1;
                continue;
            }
            let continues = match all[behind..].last() {
                Some(prev) => prev.next_seq == block.first_seq,
                // The first unconsumed block must hold the cursor's entry (or the topic's first
                // entry when nothing was ever consumed): starting after it means the entries
                // in between were lost.
                None => block.first_seq <= cursor.unwrap_or(0),
            };
            if continues {
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
        // batch, holds only that batch's continuation (possibly nothing at all).
        while let Some(last) = all.last() {
            let count = all.len();
            let prev_partial = count >= 2
                && all[count - 2].next_seq == last.first_seq
                && all[count - 2].has_partial_batch();
            if !last.any_complete && prev_partial {
                dropped.extend(all.pop());
                behind = behind.min(all.len());
                continue;
            }
            if last.has_partial_batch() {
                let last = all.last_mut().expect("checked above");
                let bytes = last.end - last.complete_end;
                report.findings.push(finding(
                    last,
                    last.complete_end,
                    FindingKind::PartialBatch { bytes },
                ));
                last.end = last.complete_end;
                last.next_seq = last.complete_next_seq;
            }
            break;
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
                neutralize(block)?;
                remember(&mut touched, block.extent.file());
                block.extent.abandon();
            }
        }
        // Numbering goes on after the last entry kept, but never below the cursor: entries
        // a reader had consumed may be gone (their files deleted, or lost with the power
        // before they were durable), and their numbers are not reused.
        let data_end = all.last().map_or(0, |b| b.next_seq);
        let next_seq = data_end.max(cursor.unwrap_or(0));
        let mut topic = RecoveredTopic {
            blocks: Vec::new(),
            next_seq,
        };
        for (index, block) in all.into_iter().enumerate() {
            if block.dirty_end > block.end {
                report.cut_bytes += block.dirty_end - block.end;
                let torn = block
                    .dirty_end
                    .saturating_sub(block.end.max(block.scanned_end));
                if torn > 0 {
                    report.findings.push(finding(
                        &block,
                        block.scanned_end,
                        FindingKind::TornTail { bytes: torn },
                    ));
                }
                if !read_only {
                    // Mutant torn_tail_not_cut: leaves torn tails and partial batches on disk.
                    if !cfg!(walrus_mutant = "torn_tail_not_cut") {
                        zero(&block.extent, block.end, block.dirty_end)?;
                    }
                    remember(&mut touched, block.extent.file());
                }
            }
            // Behind the cursor (also a block the cuts left ending at or before it): consumed.
            if index < behind || block.next_seq <= cursor.unwrap_or(0) {
                if !read_only {
                    block.extent.consume();
                }
                continue;
            }
            topic.blocks.push(Arc::new(Block::new(
                block.extent,
                block.first_seq,
                block.data_start,
                block.end,
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
        let fits = index
            .checked_add(extent_blocks)
            .is_some_and(|end| end <= file.block_count());
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

/// Reads the written part of a region of `total` bytes at `offset` into `buf`, growing the
/// read fourfold until the frames end in zeros or the region ends; returns the bytes read.
/// Reading only what is used keeps recovery proportional to the data, not to block sizes.
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
        let ended_in_zeros = matches!(scanner.end(), Some(ScanEnd::Zeroed { .. }));
        if ended_in_zeros || len == total {
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
    let mut block = ScannedBlock {
        extent,
        topic,
        first_seq,
        data_start,
        end: data_start,
        next_seq: first_seq,
        complete_end: data_start,
        complete_next_seq: first_seq,
        any_complete: false,
        scanned_end: data_start,
        path: path.to_path_buf(),
        dirty_end: data_start
            + buf
                .iter()
                .rposition(|b| *b != 0)
                .map_or(0, |p| p as u64 + 1),
    };
    let file_base = block.extent.offset();
    for item in Scanner::new(buf, data_start) {
        match item {
            ScanItem::Frame { offset, frame } => {
                if frame.header.kind != ENTRY_KIND || frame.header.seq < block.next_seq {
                    // Not an entry of this block (stale bytes): treat as the end.
                    break;
                }
                block.end = offset + frame.frame_len as u64;
                block.next_seq = frame.header.seq + 1;
                let flags = frame.header.flags;
                if flags & FLAG_BATCH == 0 || flags & FLAG_BATCH_END != 0 {
                    block.complete_end = block.end;
                    block.complete_next_seq = block.next_seq;
                    block.any_complete = true;
                }
            }
            ScanItem::Corrupt {
                offset,
                error,
                resumed_at,
            } => {
                report.corrupt_frames += 1;
                report.findings.push(Finding {
                    file: path.to_path_buf(),
                    offset: file_base + offset,
                    kind: FindingKind::CorruptEntry {
                        error: error.to_string(),
                    },
                });
                tracing::warn!(
                    file = %path.display(),
                    offset = file_base + offset,
                    resumed_at = file_base + resumed_at,
                    %error,
                    "corrupt entry skipped at recovery"
                );
            }
        }
    }
    block.scanned_end = block.end;
    block
}
