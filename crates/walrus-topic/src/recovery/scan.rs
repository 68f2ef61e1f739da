//! Phase one of recovery: scanning. Every block of every segment file is found by its header
//! frame, and its entries are scanned up to the end of written data, noting holes (damage or
//! a crash's) and the largest durability claim. Nothing is decided or written here.

use std::{path::PathBuf, sync::Arc};

use walrus_alloc::{Extent, SegmentFile};
use walrus_storage::{Decoded, ScanEnd, ScanItem, Scanner, decode_frame, resync};

use super::{Finding, FindingKind, RecoveryReport};
use crate::{
    Result,
    format::{
        BLOCK_FLAG_REMOVED, BLOCK_HEADER_KIND, FLAG_BATCH, FLAG_BATCH_END, SEAL_BYTES,
        TOPIC_NAME_BYTES_MAX, decode_claim, topic_tag,
    },
};

/// How far a block's valid entries go (offsets are relative to the extent).
#[derive(Clone, Copy, Debug)]
pub(super) struct Progress {
    /// Offset after the last valid frame, and the sequence number after it.
    pub(super) end: u64,
    pub(super) next_seq: u64,
    /// Offset after the last frame that completes something (a single entry or a batch's last
    /// entry), and the sequence number after it.
    pub(super) complete_end: u64,
    pub(super) complete_next_seq: u64,
    pub(super) any_complete: bool,
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
pub(super) struct ScannedBlock {
    pub(super) extent: Arc<Extent>,
    pub(super) topic: String,
    pub(super) first_seq: u64,
    pub(super) data_start: u64,
    pub(super) progress: Progress,
    /// Holes inside the block, in offset order, until `settle_gaps` decides them.
    gaps: Vec<Gap>,
    /// The largest durable prefix any of the block's entries claims.
    pub(super) max_claim: u64,
    /// Offset after the last valid frame the scan found, before any cut.
    pub(super) scanned_end: u64,
    /// Offset after the last non-zero byte of the extent.
    pub(super) dirty_end: u64,
    /// Whether a seal record described the block (else it was scanned).
    pub(super) sealed: bool,
    /// Entries numbered this or later are not the block's: a truncation removed them.
    stop_at: u64,
    /// The file, for findings.
    pub(super) path: PathBuf,
}

impl ScannedBlock {
    pub(super) fn has_partial_batch(&self) -> bool {
        self.progress.end > self.progress.complete_end
    }

    pub(super) fn next_seq(&self) -> u64 {
        self.progress.next_seq
    }
}

const HEADER_PROBE_BYTES: usize = walrus_storage::frame_len(TOPIC_NAME_BYTES_MAX);

/// Scans one segment file: its blocks, each with its entries scanned.
pub(super) fn scan_file(
    file: &Arc<SegmentFile>,
    buf: &mut Vec<u8>,
    hints: super::Hints,
    cuts: &super::Cuts,
    report: &mut RecoveryReport,
) -> Result<Vec<ScannedBlock>> {
    let Some(segment) = file.segment() else {
        return Ok(Vec::new());
    };
    let mut blocks = Vec::new();
    let mut index = 0u32;
    // Set by a zeroed or damaged probe until the next valid header: the blocks that follow
    // may be the inside of an extent whose header never reached the disk (a crash) or is
    // damaged, so what they hold is data, not headers, and is not reported again. In a small
    // file every unit after an extent's first is such a block.
    let mut inside_unknown = false;
    let mut prober = Prober {
        file,
        segment: segment.as_ref(),
        next: None,
    };
    while index < file.block_count() {
        let header = match prober.header(index)? {
            Probe::Header(header) => header,
            Probe::Zeroed => {
                inside_unknown = true;
                index += 1;
                continue;
            }
            Probe::Damaged(what) => {
                if !inside_unknown {
                    let offset = file.block_offset(index);
                    damaged_header(report, segment.path(), offset, what);
                }
                inside_unknown = true;
                index += 1;
                continue;
            }
        };
        inside_unknown = false;
        let Some(extent) = file.adopt_extent(index, header.extent_blocks) else {
            index += 1;
            continue;
        };
        index += header.extent_blocks;
        if header.removed {
            // A truncation removed it: nothing in it is read, and its space is given up.
            if !hints.read_only {
                extent.consume();
            }
            continue;
        }
        let BlockHeader {
            name,
            first_seq,
            data_start,
            ..
        } = header;
        let path = segment.path();
        // A truncation recovery must finish: its blocks are scanned, and end at the cut.
        let stop_at = cuts.get(&name).map_or(u64::MAX, |cut| cut.seq);
        let sealed = if hints.scan_sealed || stop_at != u64::MAX {
            None
        } else {
            let seal = prober.seal(&extent, data_start)?;
            seal.and_then(|bytes| sealed_block(&bytes, &extent, &name, first_seq, data_start, path))
        };
        if let Some(block) = sealed {
            // Its seal says where its entries end: nothing of its data is read.
            blocks.push(block);
            continue;
        }
        // The seal region at the extent's end is never data: a damaged or torn seal is not a
        // torn tail, just a block without a seal.
        // (An extent too small to hold a seal after its header has none: all of it is data.)
        let data_end = if extent.len() >= data_start + SEAL_BYTES {
            extent.len() - SEAL_BYTES
        } else {
            extent.len()
        };
        let at = extent.offset() + data_start;
        let len = read_used_part(segment.as_ref(), at, (data_end - data_start) as usize, buf)?;
        let used = &buf[..len];
        let head = (name, first_seq, data_start, stop_at);
        blocks.push(scan_block(extent, head, used, path, report));
    }
    Ok(blocks)
}

/// What a block header frame says.
struct BlockHeader {
    /// A truncation removed the block (`BLOCK_FLAG_REMOVED`).
    removed: bool,
    name: String,
    extent_blocks: u32,
    first_seq: u64,
    data_start: u64,
}

/// What the first bytes of a block hold.
enum Probe {
    Header(BlockHeader),
    /// Zeros: a block never used, or one whose header never reached the disk.
    Zeroed,
    /// Not a usable block header (why): damage, or the inside of an extent.
    Damaged(&'static str),
}

/// Reads block headers, and each seal record together with the header probe of the block
/// right after its extent (one read instead of two per extent: reopen time is mostly these
/// reads).
struct Prober<'a> {
    file: &'a SegmentFile,
    segment: &'a dyn walrus_storage::Segment,
    /// The probe of a block read with the seal before it: `(index, bytes, len)`.
    next: Option<(u32, [u8; HEADER_PROBE_BYTES], usize)>,
}

impl Prober<'_> {
    fn probe_len(&self) -> usize {
        (self.file.block_bytes() as usize).min(HEADER_PROBE_BYTES)
    }

    /// The header of block `index`.
    fn header(&mut self, index: u32) -> Result<Probe> {
        let mut probe = [0u8; HEADER_PROBE_BYTES];
        let len = self.probe_len();
        match self.next.take() {
            Some((at, bytes, len)) if at == index => probe[..len].copy_from_slice(&bytes[..len]),
            _ => {
                let offset = self.file.block_offset(index);
                self.segment.read_at(offset, &mut probe[..len])?;
            }
        }
        Ok(decode_block_header(self.file, index, &probe[..len]))
    }

    /// The seal region of `extent` (none when the extent is too small to hold one after its
    /// header), reading the probe of the next block with it.
    fn seal(&mut self, extent: &Extent, data_start: u64) -> Result<Option<[u8; SEAL]>> {
        if extent.len() < data_start + SEAL_BYTES {
            return Ok(None);
        }
        let next = extent.first_block() + extent.block_count();
        let probe_len = if next < self.file.block_count() {
            self.probe_len()
        } else {
            0
        };
        let mut bytes = [0u8; SEAL + HEADER_PROBE_BYTES];
        let at = extent.offset() + extent.len() - SEAL_BYTES;
        self.segment.read_at(at, &mut bytes[..SEAL + probe_len])?;
        if probe_len > 0 {
            let mut probe = [0u8; HEADER_PROBE_BYTES];
            probe[..probe_len].copy_from_slice(&bytes[SEAL..SEAL + probe_len]);
            self.next = Some((next, probe, probe_len));
        }
        let mut seal = [0u8; SEAL];
        seal.copy_from_slice(&bytes[..SEAL]);
        Ok(Some(seal))
    }
}

const SEAL: usize = SEAL_BYTES as usize;

/// What the `probe` bytes at the start of block `index` of `file` say.
fn decode_block_header(file: &SegmentFile, index: u32, probe: &[u8]) -> Probe {
    let header = match decode_frame(probe) {
        Decoded::Zeroed => return Probe::Zeroed,
        Decoded::Frame(frame) if frame.header.kind == BLOCK_HEADER_KIND => frame,
        Decoded::Frame(_) | Decoded::Invalid(_) => {
            return Probe::Damaged("damaged block header");
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
        return Probe::Damaged("block header with bad topic or size");
    };
    Probe::Header(BlockHeader {
        removed: header.header.flags & BLOCK_FLAG_REMOVED != 0,
        name,
        extent_blocks,
        first_seq: header.header.seq,
        data_start: header.frame_len as u64,
    })
}

/// The block as its seal record (`bytes`, the end of its extent) describes it, if the record
/// is valid (`seal.rs`).
fn sealed_block(
    bytes: &[u8; SEAL],
    extent: &Arc<Extent>,
    topic: &str,
    first_seq: u64,
    data_start: u64,
    path: &std::path::Path,
) -> Option<ScannedBlock> {
    let capacity = extent.len() - SEAL_BYTES;
    let tag = topic_tag(topic);
    let seal = crate::seal::decode(bytes, tag, first_seq, data_start, capacity)?;
    Some(ScannedBlock {
        extent: Arc::clone(extent),
        topic: topic.to_owned(),
        first_seq,
        data_start,
        progress: Progress {
            end: seal.end,
            next_seq: seal.next_seq,
            complete_end: seal.complete_end,
            complete_next_seq: seal.complete_next_seq,
            any_complete: seal.any_complete,
        },
        gaps: Vec::new(),
        max_claim: seal.max_claim,
        scanned_end: seal.end,
        dirty_end: seal.end,
        sealed: true,
        stop_at: u64::MAX,
        path: path.to_path_buf(),
    })
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

/// Scans the entries of a block: `head` is its topic, first sequence number and data start
/// (from its header), and the sequence number its entries stop before (a truncation that
/// recovery finishes; `u64::MAX` if none).
fn scan_block(
    extent: Arc<Extent>,
    head: (String, u64, u64, u64),
    buf: &[u8],
    path: &std::path::Path,
    report: &mut RecoveryReport,
) -> ScannedBlock {
    let (topic, first_seq, data_start, stop_at) = head;
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
        sealed: false,
        stop_at,
        path: path.to_path_buf(),
        dirty_end: data_start
            + buf
                .iter()
                .rposition(|b| *b != 0)
                .map_or(0, |p| p as u64 + 1),
    };
    // Damage (or zeros) seen since the last valid frame: where it starts and what it is.
    let mut damage: Option<(u64, String)> = None;
    let mut start = 0usize;
    'scan: loop {
        let mut scanner = Scanner::new(&buf[start..], data_start + start as u64);
        for item in scanner.by_ref() {
            match item {
                ScanItem::Frame { offset, frame } => {
                    if !block.take_frame(offset, &frame, tag, &mut damage, report) {
                        break 'scan;
                    }
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
    if stop_at != u64::MAX {
        // Everything was durable before the truncation started: what follows the entries
        // kept is the removed suffix, zeroed like a torn tail, but not one.
        block.scanned_end = block.dirty_end.max(block.progress.end);
    }
    block
}

impl ScannedBlock {
    /// Takes a valid frame found at `offset`; `false` if it is not an entry of this block
    /// (stale bytes, or another topic's entry written to the wrong place), which ends the
    /// block. Damage seen since the last entry is a hole if entries are missing, else plain
    /// corruption.
    fn take_frame(
        &mut self,
        offset: u64,
        frame: &walrus_storage::Frame<'_>,
        tag: u16,
        damage: &mut Option<(u64, String)>,
        report: &mut RecoveryReport,
    ) -> bool {
        let header = frame.header;
        if header.seq >= self.stop_at {
            return false;
        }
        let expected = self.progress.next_seq;
        // An entry never has the largest number (appends leave it for the next sequence
        // number), so such a frame is garbage, like stale bytes.
        if !crate::frames::is_entry_of(&header, tag)
            || header.seq < expected
            || header.seq == u64::MAX
        {
            return false;
        }
        if header.seq > expected {
            let (at, error) = damage.take().unwrap_or_else(|| {
                let jump = format!("sequence jumps from {expected} to {}", header.seq);
                (offset, jump)
            });
            self.gaps.push(Gap {
                offset: at,
                error,
                before: self.progress,
            });
        } else if let Some((at, error)) = damage.take() {
            // Damaged bytes between two consecutive entries: nothing is missing, so it is
            // plain corruption.
            report_corrupt(report, &self.path, self.extent.offset() + at, &error);
        }
        let progress = &mut self.progress;
        progress.end = offset + frame.frame_len as u64;
        progress.next_seq = header.seq + 1;
        if header.flags & FLAG_BATCH == 0 || header.flags & FLAG_BATCH_END != 0 {
            progress.complete_end = progress.end;
            progress.complete_next_seq = progress.next_seq;
            progress.any_complete = true;
        }
        self.max_claim = self.max_claim.max(decode_claim(header.seq, header.aux));
        true
    }
}

/// Decides each hole inside `block`: damage when some claim of the topic (`max_claim`) says
/// the first missing entry was durable, reported and skipped; otherwise a crash hole, where
/// the block ends (what follows is cut like a torn tail).
pub(super) fn settle_gaps(block: &mut ScannedBlock, max_claim: u64, report: &mut RecoveryReport) {
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
pub(super) fn report_corrupt(
    report: &mut RecoveryReport,
    path: &std::path::Path,
    offset: u64,
    error: &str,
) {
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
