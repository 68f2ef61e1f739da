//! T5: the corruption and truncation corpus (docs: shared RELIABILITY.md, section 3).
//!
//! A seeded WAL (16 topics, single appends and batches, all durable under `SyncEach`, cursors
//! persisted for some topics) is damaged in every way of a corpus, each damage on a fresh copy
//! of its files: every bit of every entry header and block header (on WALs of 1 KiB blocks,
//! so small entries still span several blocks per topic and the many recoveries stay cheap), a
//! seeded sample of payload bits, zeroing from every 8-byte-aligned offset of each topic's last
//! block to the block's end, a zeroed and a garbage sector at every sector of every block
//! (newest first), damaged cursor slots (zeroed, garbage, single bits), and valid blocks in
//! the wrong place (a block's image, or its first half, copied into a free slot, over the
//! next block of its topic and over another topic's block). Each copy is
//! recovered, recovered again, and read in full: `read_from` from 0 after the first recovery,
//! a `read_next` drain from the cursor after the second.
//!
//! Pass criteria, per case: no panic; every returned entry is byte-identical to what was
//! appended, under its own sequence number, once and in order; every entry whose checked bytes
//! (header and payload) the damage left alone is still returned, except entries consumed
//! behind the cursor, the rest of a block after a zeroed frame header (a zeroed region may end
//! a block; counted as `zero_ended_blocks`) and a batch whose last entry is lost at the tail;
//! damage followed by an intact entry in its block, and any damaged block header, shows up in
//! `findings()` as corruption naming the file and an offset in that block; the second recovery
//! finds the same topics; the drain delivers exactly what the first recovery found from the
//! persisted cursor on (for a damaged cursor slot, from the other slot's cursor).
//!
//! `SEED=<n>` replays the WALs of one run; `CORPUS_CASE=<text>` runs only the cases whose label
//! contains the text and prints the findings; `CORPUS_FULL=1` (as `cargo xtask reliability`
//! sets it) runs the full corpus: 10 header-bit WALs of 200 entries with every bit of topic
//! names too, and a 2,000-entry WAL for 50,000 payload flips, the last two blocks of every
//! topic and every cursor-slot header bit.

use std::{
    collections::BTreeMap,
    ops::Range,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use walrus_alloc::{AllocConfig, FILE_HEADER_BYTES};
use walrus_storage::{
    BackendKind, Decoded, FRAME_HEADER_BYTES, FaultyStorage, PowerLoss, ScanItem, Scanner, Storage,
    decode_frame,
};
use walrus_topic::{
    Engine, EngineConfig, Finding, FsyncSchedule, ReadConsistency, ReadEntry, SEAL_BYTES, TopicInfo,
};

/// Frame kind of a seal record (docs/FORMAT.md, "Seal records").
const SEAL_KIND: u8 = 0x12;

use crate::support::{Rng, env_on, seed_from_env};

const TOPICS: usize = 16;
/// Block size of the WALs of most classes.
const BLOCK_BYTES: usize = 4096;
/// Block size of the header-bit WALs: small entries still span several blocks per topic,
/// and each of the many recoveries stays cheap.
const SMALL_BLOCK_BYTES: usize = 1024;
const SECTOR_BYTES: usize = 512;
const CURSOR_SLOT_BYTES: usize = 256;
/// Frame kinds of the topic layer (docs/FORMAT.md, "Block layout" and "Cursor index").
const BLOCK_HEADER_KIND: u8 = 0x10;
const ENTRY_KIND: u8 = 0x11;
const CURSOR_KIND: u8 = 0x20;

/// How big the corpus is: a quick default, or the full run of `cargo xtask reliability`.
struct Sizes {
    /// Entries of the WAL that the payload, truncation, sector and cursor classes damage.
    entries: usize,
    /// WALs whose every header bit is flipped, and the entries of each.
    header_wals: u64,
    header_wal_entries: usize,
    /// Whether every bit of every topic-name byte of block headers is flipped (otherwise one
    /// bit per byte; the 32 header bytes always get all eight).
    all_name_bits: bool,
    payload_flips: usize,
    /// Last blocks of each topic that get every truncation.
    truncated_blocks: usize,
    /// Whether every bit of every cursor slot header is flipped (otherwise a few bytes).
    all_slot_bits: bool,
}

fn sizes() -> Sizes {
    if env_on("CORPUS_FULL") {
        Sizes {
            entries: 2000,
            header_wals: 10,
            header_wal_entries: 200,
            all_name_bits: true,
            payload_flips: 50_000,
            truncated_blocks: 2,
            all_slot_bits: true,
        }
    } else {
        Sizes {
            entries: 200,
            header_wals: 1,
            header_wal_entries: 96,
            all_name_bits: false,
            payload_flips: 3000,
            truncated_blocks: 1,
            all_slot_bits: false,
        }
    }
}

impl Sizes {
    /// The WAL of every class but the header bits.
    fn shape(&self) -> Shape {
        Shape {
            entries: self.entries,
            block_bytes: BLOCK_BYTES,
            cursors: true,
        }
    }
}

fn topic_name(t: usize) -> String {
    match t {
        0 => String::new(),
        1 => "a".into(),
        15 => "z".repeat(walrus_topic::TOPIC_NAME_BYTES_MAX),
        _ => format!("topic-{t:02}"),
    }
}

fn config(block_bytes: usize, scan_sealed: bool) -> EngineConfig {
    EngineConfig {
        dir: "<corpus>".into(),
        backend: BackendKind::Faulty,
        alloc: AllocConfig {
            block_bytes: block_bytes as u64,
            blocks_per_file: 4,
            small_unit_bytes: 4096,
            lanes: 1,
            precreate: false,
            quiet: true,
        },
        fsync: FsyncSchedule::SyncEach,
        quiet: true,
        scan_sealed,
        ..EngineConfig::default()
    }
}

/// Opens the copy; `scan_sealed` makes recovery scan every block, ignoring seal records (as a
/// read-only open does), so that it judges damage to sealed blocks as well.
fn open(
    storage: &FaultyStorage,
    block_bytes: usize,
    scan_sealed: bool,
) -> walrus_topic::Result<Arc<Engine>> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config(block_bytes, scan_sealed))
}

/// What was appended and read, per topic.
struct Model {
    names: Vec<String>,
    /// Every entry, by sequence number.
    entries: Vec<Vec<Vec<u8>>>,
    /// The sequence numbers of the batch each entry belongs to, if any.
    batch: Vec<Vec<Option<Range<u64>>>>,
    /// The persisted cursor (next entry to deliver).
    cursor: Vec<u64>,
}

/// Bytes a frame's checksum covers: `start..checked_end` (header and payload, not padding).
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    checked_end: usize,
}

impl Span {
    fn of(offset: usize, payload_len: usize) -> Self {
        Self {
            start: offset,
            checked_end: offset + FRAME_HEADER_BYTES + payload_len,
        }
    }

    fn header(self) -> Range<usize> {
        self.start..self.start + FRAME_HEADER_BYTES
    }

    fn checked(self) -> Range<usize> {
        self.start..self.checked_end
    }
}

#[derive(Debug)]
struct EntryLoc {
    seq: u64,
    span: Span,
}

/// One used block (extent) of a segment file, as written.
#[derive(Debug)]
struct BlockLoc {
    file: usize,
    topic: usize,
    start: usize,
    end: usize,
    header: Span,
    entries: Vec<EntryLoc>,
    /// The seal record in the extent's last `SEAL_BYTES`, if the block has one.
    seal: Option<Span>,
}

/// One valid cursor slot of a cursor file.
#[derive(Debug)]
struct SlotLoc {
    file: usize,
    span: Span,
    topic: usize,
    generation: u64,
    next_seq: u64,
}

/// The undamaged WAL: its files, where everything is in them, and what they hold.
struct Base {
    seed: u64,
    block_bytes: usize,
    files: Vec<(String, Vec<u8>)>,
    /// Per file, the part that is not zero.
    spans: Vec<Range<usize>>,
    blocks: Vec<BlockLoc>,
    slots: Vec<SlotLoc>,
    model: Model,
}

impl Base {
    fn entry_count(&self) -> usize {
        self.model.entries.iter().map(Vec::len).sum()
    }

    /// The last `count` blocks of `topic`, oldest first (blocks are parsed in the order they
    /// were allocated: file numbers and block indexes only grow).
    fn last_blocks_of(&self, topic: usize, count: usize) -> Vec<&BlockLoc> {
        let mut of_topic: Vec<&BlockLoc> =
            self.blocks.iter().filter(|b| b.topic == topic).collect();
        let keep = of_topic.len().saturating_sub(count);
        of_topic.drain(..keep);
        of_topic
    }
}

fn payload(rng: &mut Rng, topic: usize, seq: usize, small: bool, block_bytes: usize) -> Vec<u8> {
    let unit = block_bytes as u64 / 32;
    let len = if small {
        8 + rng.below(32)
    } else {
        match rng.below(10) {
            0..=5 => rng.below(unit),
            6..=8 => unit + rng.below(4 * unit),
            _ => 4 * unit + rng.below(12 * unit),
        }
    };
    let mut data = format!("{topic}:{seq}:").into_bytes();
    // No zero bytes: zeroing any payload byte then always changes the entry.
    data.extend((0..len).map(|_| 1 + rng.below(255) as u8));
    data
}

/// The shape of a WAL to build.
#[derive(Clone, Copy)]
struct Shape {
    entries: usize,
    block_bytes: usize,
    /// Whether some topics have a persisted cursor (one or two entries consumed).
    cursors: bool,
}

/// Builds the WAL of `seed`: `shape.entries` entries or a few more, the first three of each
/// topic small (with cursors, one or two of them are consumed, so cursors lie in first blocks).
fn build_base(seed: u64, shape: Shape) -> Base {
    let Shape {
        entries: target,
        block_bytes,
        cursors,
    } = shape;
    let storage = FaultyStorage::new();
    let engine = open(&storage, block_bytes, false).expect("open an empty storage");
    let mut rng = Rng(seed);
    let names: Vec<String> = (0..TOPICS).map(topic_name).collect();
    let mut model = Model {
        names: names.clone(),
        entries: vec![Vec::new(); TOPICS],
        batch: vec![Vec::new(); TOPICS],
        cursor: vec![0; TOPICS],
    };
    let sync = FsyncSchedule::SyncEach;
    let mut total = 0;
    for (t, name) in names.iter().enumerate() {
        for _ in 0..if cursors { 3 } else { 1 } {
            let data = payload(&mut rng, t, model.entries[t].len(), true, block_bytes);
            engine.append(name, &data, sync).unwrap();
            model.entries[t].push(data);
            model.batch[t].push(None);
            total += 1;
        }
    }
    while total < target {
        // Half the entries go to four topics, so those span several blocks even in small WALs.
        let t = if rng.below(2) == 0 {
            rng.below(4) as usize
        } else {
            rng.below(TOPICS as u64) as usize
        };
        if rng.below(10) < 7 {
            let data = payload(&mut rng, t, model.entries[t].len(), false, block_bytes);
            engine.append(&names[t], &data, sync).unwrap();
            model.entries[t].push(data);
            model.batch[t].push(None);
            total += 1;
        } else {
            let n = 2 + rng.below(11) as usize;
            let start = model.entries[t].len();
            let batch: Vec<Vec<u8>> = (0..n)
                .map(|i| payload(&mut rng, t, start + i, false, block_bytes))
                .collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            engine.batch_append(&names[t], &refs, sync).unwrap();
            let range = start as u64..(start + n) as u64;
            model.entries[t].extend(batch);
            model.batch[t].extend(std::iter::repeat_n(Some(range), n));
            total += n;
        }
    }
    // Cursors: none, 1 (one slot written) or 2 (both slots written) entries consumed.
    for (t, name) in names.iter().enumerate().filter(|_| cursors) {
        for _ in 0..t % 3 {
            let entry = engine
                .read_next(name, true, ReadConsistency::StrictlyAtOnce)
                .unwrap()
                .expect("an entry to read");
            assert_eq!(entry.seq, model.cursor[t]);
            model.cursor[t] += 1;
        }
    }
    drop(engine);
    // Everything was acknowledged under SyncEach: nothing may depend on unsynced bytes.
    storage.power_loss(PowerLoss::DropAll);
    let files = copy_files(&storage);
    let (blocks, slots) = parse(&files, &names);
    let base = Base {
        seed,
        block_bytes,
        spans: files.iter().map(|(_, bytes)| written_span(bytes)).collect(),
        files,
        blocks,
        slots,
        model,
    };
    let parsed: usize = base.blocks.iter().map(|b| b.entries.len()).sum();
    assert_eq!(parsed, base.entry_count(), "every entry found in the files");
    base
}

fn copy_files(storage: &FaultyStorage) -> Vec<(String, Vec<u8>)> {
    let mut names = storage.list().unwrap();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let segment = storage.open(&name).unwrap();
            let mut bytes = vec![0u8; segment.len() as usize];
            segment.read_at(0, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Finds every block, entry and cursor slot in the undamaged files.
fn parse(files: &[(String, Vec<u8>)], names: &[String]) -> (Vec<BlockLoc>, Vec<SlotLoc>) {
    let topic_of = |name: &[u8]| {
        names
            .iter()
            .position(|n| n.as_bytes() == name)
            .expect("a known topic name")
    };
    let mut blocks = Vec::new();
    let mut slots = Vec::new();
    for (file, (name, bytes)) in files.iter().enumerate() {
        if name.ends_with(".wal") {
            let header_len = FILE_HEADER_BYTES as usize;
            let Decoded::Frame(header) = decode_frame(&bytes[..header_len]) else {
                panic!("{name}: file header unreadable");
            };
            let block_bytes = u64_at(header.payload, 8) as usize;
            let count = u32::from_le_bytes(header.payload[16..20].try_into().unwrap()) as usize;
            let mut index = 0;
            while index < count {
                let start = header_len + index * block_bytes;
                let frame = match decode_frame(&bytes[start..start + block_bytes]) {
                    Decoded::Zeroed => {
                        index += 1;
                        continue;
                    }
                    Decoded::Frame(frame) if frame.header.kind == BLOCK_HEADER_KIND => frame,
                    other => panic!("{name}: block {index} unreadable: {other:?}"),
                };
                let extent = frame.header.aux.max(1) as usize;
                let end = start + extent * block_bytes;
                let data_start = start + frame.frame_len;
                let mut entries = Vec::new();
                let seal_at = end - SEAL_BYTES as usize;
                let seal = match decode_frame(&bytes[seal_at..end]) {
                    Decoded::Frame(frame) if frame.header.kind == SEAL_KIND => {
                        Some(Span::of(seal_at, frame.payload.len()))
                    }
                    Decoded::Zeroed => None,
                    other => panic!("{name}: seal of block {index} unreadable: {other:?}"),
                };
                for item in Scanner::new(&bytes[data_start..seal_at], data_start as u64) {
                    match item {
                        ScanItem::Frame { offset, frame } => {
                            assert_eq!(frame.header.kind, ENTRY_KIND);
                            entries.push(EntryLoc {
                                seq: frame.header.seq,
                                span: Span::of(offset as usize, frame.payload.len()),
                            });
                        }
                        ScanItem::Corrupt { offset, .. } => {
                            panic!("{name}: undamaged WAL corrupt at {offset}")
                        }
                    }
                }
                blocks.push(BlockLoc {
                    file,
                    topic: topic_of(frame.payload),
                    start,
                    end,
                    header: Span::of(start, frame.payload.len()),
                    entries,
                    seal,
                });
                index += extent;
            }
        } else if name.starts_with("cursors-") {
            for at in (0..bytes.len()).step_by(CURSOR_SLOT_BYTES) {
                let Decoded::Frame(frame) = decode_frame(&bytes[at..at + CURSOR_SLOT_BYTES]) else {
                    continue;
                };
                assert_eq!(frame.header.kind, CURSOR_KIND);
                slots.push(SlotLoc {
                    file,
                    span: Span::of(at, frame.payload.len()),
                    topic: topic_of(&frame.payload[32..]),
                    generation: frame.header.seq,
                    next_seq: u64_at(frame.payload, 0),
                });
            }
        }
    }
    (blocks, slots)
}

/// One damage: `bytes` written over `file` at `at`.
struct Damage {
    label: String,
    file: usize,
    at: usize,
    bytes: Vec<u8>,
    /// Places (file, byte range) of which at least one must be named by a corruption finding,
    /// beyond what `expect` derives from the bytes (a misplaced copy of a block).
    must_report: Vec<(usize, Range<usize>)>,
}

fn flip(base: &Base, label: String, file: usize, at: usize, bit: u32) -> Damage {
    Damage {
        label,
        file,
        at,
        bytes: vec![base.files[file].1[at] ^ (1 << bit)],
        must_report: Vec::new(),
    }
}

/// What a correct recovery of a damaged copy may and must do.
struct Expect {
    /// Per topic and sequence number: whether the entry may be missing.
    may_lose: Vec<Vec<bool>>,
    /// Places (file, byte range) of which a corruption finding must name one, if any: the
    /// damaged block, or either copy of a misplaced one.
    corruption: Option<Vec<(usize, Range<usize>)>>,
    /// Whether a zeroed frame header ends a block early (entries after it may go).
    zero_ended: bool,
    /// Per topic: the cursor the drain must start from.
    cursor: Vec<u64>,
    /// Whether the damage changed no byte at all.
    noop: bool,
}

fn expect(base: &Base, damage: &Damage, new: &[u8]) -> Expect {
    let old = &base.files[damage.file].1;
    let hit = damage.at..damage.at + damage.bytes.len();
    let touched = |r: Range<usize>| {
        let (s, e) = (r.start.max(hit.start), r.end.min(hit.end));
        s < e && old[s..e] != new[s..e]
    };
    let zeroed = |r: Range<usize>| new[r].iter().all(|b| *b == 0);
    let model = &base.model;
    let mut ex = Expect {
        may_lose: model.entries.iter().map(|e| vec![false; e.len()]).collect(),
        corruption: None,
        zero_ended: false,
        cursor: model.cursor.clone(),
        noop: old[hit.clone()] == new[hit.clone()],
    };
    for block in &base.blocks {
        if block.file != damage.file || block.end <= hit.start || block.start >= hit.end {
            continue;
        }
        let lose = &mut ex.may_lose[block.topic];
        let damaged: Vec<bool> = block
            .entries
            .iter()
            .map(|e| touched(e.span.checked()))
            .collect();
        if touched(block.header.checked()) {
            // The block cannot be read: all its entries may go. Reported unless the header
            // now reads as never written, or nothing valid was left to lose.
            block
                .entries
                .iter()
                .for_each(|e| lose[e.seq as usize] = true);
            if zeroed(block.header.header()) {
                ex.zero_ended = true;
            } else if damaged.iter().any(|d| !d) {
                ex.corruption = Some(vec![(block.file, block.start..block.end)]);
            }
            continue;
        }
        // Walk like the scanner: it reaches a damaged frame right after a valid one.
        let mut i = 0;
        while i < block.entries.len() {
            if !damaged[i] {
                i += 1;
                continue;
            }
            if zeroed(block.entries[i].span.header()) {
                // Looks like the end of written data: the rest of the block may go.
                ex.zero_ended = true;
                block.entries[i..]
                    .iter()
                    .for_each(|e| lose[e.seq as usize] = true);
                break;
            }
            match (i + 1..block.entries.len()).find(|j| !damaged[*j]) {
                Some(next) => {
                    // Damage followed by a valid entry: corruption, skipped and reported.
                    ex.corruption = Some(vec![(block.file, block.start..block.end)]);
                    block.entries[i..next]
                        .iter()
                        .for_each(|e| lose[e.seq as usize] = true);
                    i = next;
                }
                None => {
                    // Nothing valid after it: a torn tail, cut.
                    block.entries[i..]
                        .iter()
                        .for_each(|e| lose[e.seq as usize] = true);
                    break;
                }
            }
        }
    }
    if ex.corruption.is_none() && !damage.must_report.is_empty() {
        ex.corruption = Some(damage.must_report.clone());
    }
    // A topic whose tail is lost loses the batch the new tail ends inside.
    for (t, lose) in ex.may_lose.iter_mut().enumerate() {
        let kept_end = lose.iter().rposition(|l| !l).map_or(0, |p| p + 1);
        if kept_end == 0 || kept_end == lose.len() {
            continue;
        }
        if let Some(batch) = &model.batch[t][kept_end - 1]
            && batch.end as usize > kept_end
        {
            lose[batch.start as usize..kept_end].fill(true);
        }
    }
    // A damaged cursor slot: the other slot of the pair (or none) gives the cursor.
    for slot in base.slots.iter().filter(|s| s.file == damage.file) {
        if touched(slot.span.checked()) {
            ex.cursor[slot.topic] = base
                .slots
                .iter()
                .filter(|s| s.topic == slot.topic && s.generation != slot.generation)
                .max_by_key(|s| s.generation)
                .map_or(0, |s| s.next_seq);
        }
    }
    // Entries behind the cursor were consumed: their block may be released at recovery.
    for (lose, cursor) in ex.may_lose.iter_mut().zip(&ex.cursor) {
        let behind = (*cursor as usize).min(lose.len());
        lose[..behind].fill(true);
    }
    ex
}

/// Figures of one run of the corpus.
#[derive(Default)]
struct Figures {
    cases: u64,
    noop: u64,
    entries_checked: u64,
    acked_lost: u64,
    corrupt: u64,
    duplicate: u64,
    out_of_order: u64,
    unstable: u64,
    drain_mismatch: u64,
    failed_recoveries: u64,
    panics: u64,
    corruption_expected: u64,
    corruption_reported: u64,
    extra_reports: u64,
    zero_ended: u64,
    violating_cases: u64,
    /// Violations by kind (what was damaged, what went wrong): count and first example.
    violations: BTreeMap<String, (u64, String)>,
}

impl Figures {
    fn merge(&mut self, other: Self) {
        self.cases += other.cases;
        self.noop += other.noop;
        self.entries_checked += other.entries_checked;
        self.acked_lost += other.acked_lost;
        self.corrupt += other.corrupt;
        self.duplicate += other.duplicate;
        self.out_of_order += other.out_of_order;
        self.unstable += other.unstable;
        self.drain_mismatch += other.drain_mismatch;
        self.failed_recoveries += other.failed_recoveries;
        self.panics += other.panics;
        self.corruption_expected += other.corruption_expected;
        self.corruption_reported += other.corruption_reported;
        self.extra_reports += other.extra_reports;
        self.zero_ended += other.zero_ended;
        self.violating_cases += other.violating_cases;
        for (kind, (count, example)) in other.violations {
            self.violations.entry(kind).or_insert((0, example)).0 += count;
        }
    }
}

type Snapshot = Vec<(Option<TopicInfo>, Vec<ReadEntry>)>;

fn snapshot(engine: &Engine, names: &[String]) -> Snapshot {
    names
        .iter()
        .map(|name| {
            (
                engine.topic_info_of(name),
                engine.read_from(name, 0, usize::MAX).unwrap(),
            )
        })
        .collect()
}

/// The part of `bytes` that is not zero (empty if none is).
fn written_span(bytes: &[u8]) -> Range<usize> {
    match bytes.iter().position(|b| *b != 0) {
        Some(first) => first..bytes.iter().rposition(|b| *b != 0).unwrap() + 1,
        None => 0..0,
    }
}

/// Writes `files` (name, bytes, the span to copy) into a fresh storage, all durable.
fn storage_with(files: &[(&str, &[u8], Range<usize>)]) -> FaultyStorage {
    let storage = FaultyStorage::new();
    for (name, bytes, span) in files {
        let segment = storage.create(name, bytes.len() as u64).unwrap();
        // Created zeroed: only the written span needs copying.
        if !span.is_empty() {
            segment
                .write_at(span.start as u64, &bytes[span.clone()])
                .unwrap();
        }
        segment.sync().unwrap();
    }
    storage
}

fn seqs(entries: &[ReadEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Runs one case: damage a copy, recover twice, read everything, check.
fn run_case(base: &Base, damage: &Damage, verbose: bool, fig: &mut Figures) {
    let old = &base.files[damage.file].1;
    let mut new = old.clone();
    new[damage.at..damage.at + damage.bytes.len()].copy_from_slice(&damage.bytes);
    let ex = expect(base, damage, &new);
    fig.cases += 1;
    if ex.noop {
        fig.noop += 1;
        return;
    }
    let hit = damage.at..damage.at + damage.bytes.len();
    let files: Vec<(&str, &[u8], Range<usize>)> = base
        .files
        .iter()
        .zip(&base.spans)
        .enumerate()
        .map(|(i, ((name, bytes), span))| {
            if i == damage.file {
                let span = span.start.min(hit.start)..span.end.max(hit.end);
                (name.as_str(), new.as_slice(), span)
            } else {
                (name.as_str(), bytes.as_slice(), span.clone())
            }
        })
        .collect();
    let mut problems: Vec<(String, String)> = Vec::new();
    for trust_seals in [false, true] {
        // Each open writes (cuts, seals): every mode gets its own copy.
        let storage = storage_with(&files);
        let mut found: Vec<(String, String)> = Vec::new();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            check_case(base, &ex, &storage, trust_seals, verbose, fig, &mut found);
        }));
        if let Err(panic) = outcome {
            fig.panics += 1;
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            found.push(("panic".into(), format!("panicked: {message}")));
        }
        let mode = if trust_seals {
            "seals trusted"
        } else {
            "scanned"
        };
        problems.extend(
            found
                .into_iter()
                .map(|(tag, detail)| (format!("{tag} ({mode})"), detail)),
        );
    }
    if !problems.is_empty() {
        fig.violating_cases += 1;
        // The kind: what was damaged (the label up to the topic) and what went wrong.
        let damaged = damage.label.split(" t").next().unwrap_or_default();
        let mut tags: Vec<&str> = problems.iter().map(|(tag, _)| tag.as_str()).collect();
        tags.sort_unstable();
        tags.dedup();
        let kind = format!("{damaged}: {}", tags.join(", "));
        let details: Vec<&str> = problems.iter().map(|(_, d)| d.as_str()).collect();
        let example = format!(
            "SEED={} CORPUS_CASE='{}': {}",
            base.seed,
            damage.label,
            details.join("; ")
        );
        fig.violations.entry(kind).or_insert((0, example)).0 += 1;
    }
}

/// Names of the kinds of `findings`, sorted, for grouping violations.
fn finding_kinds(findings: &[Finding]) -> String {
    let mut kinds: Vec<String> = findings
        .iter()
        .map(|f| {
            let debug = format!("{:?}", f.kind);
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds.join("+")
}

/// Checks one damaged copy. With `trust_seals`, recovery takes sealed blocks from their seal
/// records (as a normal open does), and damage in them is met by the reads: every criterion
/// holds but the reporting of corruption at open. Otherwise recovery scans every block.
fn check_case(
    base: &Base,
    ex: &Expect,
    storage: &FaultyStorage,
    trust_seals: bool,
    verbose: bool,
    fig: &mut Figures,
    problems: &mut Vec<(String, String)>,
) {
    let model = &base.model;
    let names = &model.names;
    let scan = !trust_seals;
    let first = match open(storage, base.block_bytes, scan) {
        Ok(engine) => engine,
        Err(err) => {
            fig.failed_recoveries += 1;
            problems.push(("recovery failed".into(), format!("recovery failed: {err}")));
            return;
        }
    };
    let findings: Vec<Finding> = first.findings().to_vec();
    let before = snapshot(&first, names);
    drop(first);
    let second = match open(storage, base.block_bytes, scan) {
        Ok(engine) => engine,
        Err(err) => {
            fig.failed_recoveries += 1;
            problems.push((
                "second recovery failed".into(),
                format!("second recovery failed: {err}"),
            ));
            return;
        }
    };
    // The second recovery must agree; its drain (below) compares the entries.
    let infos: Vec<Option<TopicInfo>> = names.iter().map(|n| second.topic_info_of(n)).collect();
    if verbose {
        for finding in &findings {
            println!("  finding: {finding}");
        }
    }
    for (t, (info, _)) in before.iter().enumerate() {
        if *info != infos[t] {
            fig.unstable += 1;
            problems.push((
                "unstable".into(),
                format!(
                    "second recovery differs for topic {t}: {info:?} then {:?}",
                    infos[t]
                ),
            ));
        }
    }
    for (t, (_, entries)) in before.iter().enumerate() {
        let expected = &model.entries[t];
        let mut present = vec![false; expected.len()];
        let mut previous: Option<u64> = None;
        for entry in entries {
            fig.entries_checked += 1;
            match previous {
                Some(p) if entry.seq == p => {
                    fig.duplicate += 1;
                    problems.push((
                        "duplicate".into(),
                        format!("topic {t}: seq {} returned twice", entry.seq),
                    ));
                }
                Some(p) if entry.seq < p => {
                    fig.out_of_order += 1;
                    problems.push((
                        "out of order".into(),
                        format!("topic {t}: seq {} after {p}", entry.seq),
                    ));
                }
                _ => {}
            }
            previous = Some(entry.seq);
            match expected.get(entry.seq as usize) {
                Some(data) if *data == entry.data => present[entry.seq as usize] = true,
                _ => {
                    fig.corrupt += 1;
                    problems.push((
                        "corrupt entry returned".into(),
                        format!(
                            "topic {t}: seq {} returned with bytes never appended under it",
                            entry.seq
                        ),
                    ));
                }
            }
        }
        let missing: Vec<usize> = (0..expected.len())
            .filter(|seq| !present[*seq] && !ex.may_lose[t][*seq])
            .collect();
        if !missing.is_empty() {
            fig.acked_lost += missing.len() as u64;
            let kinds: Vec<String> = findings.iter().map(ToString::to_string).collect();
            problems.push((
                format!("undamaged entries lost (findings {})", finding_kinds(&findings)),
                format!(
                    "topic {t}: {} undamaged entries missing (seqs {:?}..={:?}, of {}); findings: {kinds:?}",
                    missing.len(),
                    missing.first().unwrap(),
                    missing.last().unwrap(),
                    expected.len(),
                ),
            ));
        }
    }
    let reported: Vec<&Finding> = findings.iter().filter(|f| f.is_corruption()).collect();
    match &ex.corruption {
        // Damage inside a trusted sealed block is met by reads, not by recovery.
        _ if trust_seals => {}
        Some(places) => {
            fig.corruption_expected += 1;
            let names_it = |f: &&Finding| {
                places.iter().any(|(file, range)| {
                    f.file.ends_with(&base.files[*file].0) && range.contains(&(f.offset as usize))
                })
            };
            if reported.iter().any(names_it) {
                fig.corruption_reported += 1;
            } else {
                let all: Vec<String> = findings.iter().map(ToString::to_string).collect();
                problems.push((
                    format!(
                        "corruption not reported (findings {})",
                        finding_kinds(&findings)
                    ),
                    format!(
                        "corruption at {} not reported; findings: {all:?}",
                        places
                            .iter()
                            .map(|(file, range)| format!("{}@{}", base.files[*file].0, range.start))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ));
            }
        }
        None if !reported.is_empty() => fig.extra_reports += 1,
        None => {}
    }
    if ex.zero_ended {
        fig.zero_ended += 1;
    }
    // The drain after the second recovery delivers exactly what the first one found, from
    // the cursor on. (The cursor is never persisted, not even at the close: it is not under
    // test here.)
    let mode = ReadConsistency::AtLeastOnce {
        persist_every: u32::MAX,
    };
    for (t, name) in names.iter().enumerate() {
        let mut drained = Vec::new();
        loop {
            match second.read_next(name, true, mode) {
                Ok(Some(entry)) => drained.push(entry),
                Ok(None) => break,
                Err(err) => {
                    problems.push((
                        "read failed".into(),
                        format!("topic {t}: read_next failed: {err}"),
                    ));
                    break;
                }
            }
            if drained.len() > model.entries[t].len() {
                problems.push((
                    "drain endless".into(),
                    format!("topic {t}: read_next does not end"),
                ));
                break;
            }
        }
        let wanted: Vec<ReadEntry> = before[t]
            .1
            .iter()
            .filter(|e| e.seq >= ex.cursor[t])
            .cloned()
            .collect();
        if drained != wanted {
            fig.drain_mismatch += 1;
            problems.push((
                "drain differs".into(),
                format!(
                    "topic {t}: drain from cursor {} after the second recovery returned seqs {:?}, the first recovery found {:?}",
                    ex.cursor[t],
                    seqs(&drained),
                    seqs(&wanted)
                ),
            ));
        }
    }
}

/// Runs every damage on its own copy, on every core; returns the figures.
fn run_corpus(base: &Base, damages: &[Damage]) -> Figures {
    let filter = std::env::var("CORPUS_CASE").ok();
    let selected: Vec<&Damage> = damages
        .iter()
        .filter(|d| filter.as_ref().is_none_or(|f| d.label.contains(f.as_str())))
        .collect();
    let verbose = filter.is_some();
    let next = AtomicUsize::new(0);
    let total = Mutex::new(Figures::default());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Figures::default();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(damage) = selected.get(index) else {
                        break;
                    };
                    if verbose {
                        println!("case {}", damage.label);
                    }
                    run_case(base, damage, verbose, &mut local);
                }
                total.lock().unwrap().merge(local);
            });
        }
    });
    total.into_inner().unwrap()
}

/// Prints the figures line and fails on any violation.
fn report(class: &str, seeds: &[u64], entries: usize, fig: &Figures, started: Instant) {
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    println!(
        "corruption_corpus: class={class} seeds={} cases={} noop={} entries_acknowledged={entries} entries_checked={} acked_lost={} corrupt={} duplicate={} out_of_order={} unstable={} drain_mismatch={} failed_recoveries={} panics={} corruptions_expected={} corruptions_reported={} extra_reports={} zero_ended_blocks={} violating_cases={} secs={:.1}",
        seeds.join(","),
        fig.cases,
        fig.noop,
        fig.entries_checked,
        fig.acked_lost,
        fig.corrupt,
        fig.duplicate,
        fig.out_of_order,
        fig.unstable,
        fig.drain_mismatch,
        fig.failed_recoveries,
        fig.panics,
        fig.corruption_expected,
        fig.corruption_reported,
        fig.extra_reports,
        fig.zero_ended,
        fig.violating_cases,
        started.elapsed().as_secs_f64(),
    );
    if fig.violating_cases > 0 {
        for (kind, (count, example)) in &fig.violations {
            eprintln!("  {count} cases: {kind}\n    e.g. {example}");
        }
        panic!(
            "corruption_corpus {class}: {} of {} cases violate the pass criteria (replay with SEED={} CORPUS_CASE=<label>)",
            fig.violating_cases, fig.cases, seeds[0]
        );
    }
}

/// The seed, sizes and start time of one corpus test; prints the seed.
fn setup(class: &str) -> (u64, Sizes, Instant) {
    let seed = seed_from_env();
    println!("corruption_corpus: class={class} seed={seed} (replay with SEED={seed})");
    (seed, sizes(), Instant::now())
}

/// The undamaged copy must pass every check, or the corpus would blame the damage.
fn check_undamaged(base: &Base) {
    let undamaged = Damage {
        label: "undamaged".into(),
        file: 0,
        at: 0,
        bytes: Vec::new(),
        must_report: Vec::new(),
    };
    let mut fig = Figures::default();
    let ex = expect(base, &undamaged, &base.files[0].1);
    let files: Vec<(&str, &[u8], Range<usize>)> = base
        .files
        .iter()
        .zip(&base.spans)
        .map(|((name, bytes), span)| (name.as_str(), bytes.as_slice(), span.clone()))
        .collect();
    let mut problems = Vec::new();
    for trust_seals in [false, true] {
        let storage = storage_with(&files);
        check_case(
            base,
            &ex,
            &storage,
            trust_seals,
            false,
            &mut fig,
            &mut problems,
        );
    }
    assert!(
        problems.is_empty() && fig.entries_checked > 0,
        "SEED={}: the undamaged WAL fails the checks: {problems:?}",
        base.seed
    );
}

/// Runs `damages_of` on `wals` WALs of `shape` (seeds `seed`, `seed + 1`, ...) and reports the
/// figures.
fn run_class(
    class: &str,
    seed: u64,
    wals: u64,
    shape: Shape,
    started: Instant,
    damages_of: impl Fn(&Base) -> Vec<Damage>,
) {
    let mut total = Figures::default();
    let mut seeds = Vec::new();
    let mut acknowledged = 0;
    for wal in 0..wals {
        let base = build_base(seed.wrapping_add(wal), shape);
        seeds.push(base.seed);
        acknowledged += base.entry_count();
        let damages = damages_of(&base);
        check_undamaged(&base);
        total.merge(run_corpus(&base, &damages));
    }
    report(class, &seeds, acknowledged, &total, started);
}

fn file_name(base: &Base, file: usize) -> &str {
    &base.files[file].0
}

fn header_bit_flips(base: &Base, all_name_bits: bool) -> Vec<Damage> {
    let mut damages = Vec::new();
    for block in &base.blocks {
        let file = file_name(base, block.file);
        for at in block.header.checked() {
            let byte = at - block.start;
            let bits = if all_name_bits || byte < FRAME_HEADER_BYTES {
                0..8
            } else {
                let bit = (byte % 8) as u32;
                bit..bit + 1
            };
            for bit in bits {
                let label = format!(
                    "block header t{} {file}@{} byte {byte} bit {bit}",
                    block.topic, block.start,
                );
                damages.push(flip(base, label, block.file, at, bit));
            }
        }
        // Seal records: every bit of the frame header and of the first payload field (the
        // block's first sequence number) of the first blocks; a damaged seal costs a scan.
        if let Some(seal) = block
            .seal
            .filter(|_| block.start < 4 * base.block_bytes + 4096)
        {
            for at in seal.start..seal.start + FRAME_HEADER_BYTES + 8 {
                for bit in 0..8 {
                    let label = format!(
                        "seal record t{} {file}@{} byte {} bit {bit}",
                        block.topic,
                        seal.start,
                        at - seal.start
                    );
                    damages.push(flip(base, label, block.file, at, bit));
                }
            }
        }
        for entry in &block.entries {
            for at in entry.span.header() {
                for bit in 0..8 {
                    let label = format!(
                        "entry header t{} seq {} {file}@{} byte {} bit {bit}",
                        block.topic,
                        entry.seq,
                        entry.span.start,
                        at - entry.span.start
                    );
                    damages.push(flip(base, label, block.file, at, bit));
                }
            }
        }
    }
    damages
}

fn payload_bit_flips(base: &Base, count: usize) -> Vec<Damage> {
    let mut rng = Rng(base.seed ^ 0x7061_796c_6f61_6473);
    let with_payload: Vec<(&BlockLoc, &EntryLoc)> = base
        .blocks
        .iter()
        .flat_map(|b| b.entries.iter().map(move |e| (b, e)))
        .filter(|(_, e)| e.span.checked_end > e.span.start + FRAME_HEADER_BYTES)
        .collect();
    (0..count)
        .map(|_| {
            let (block, entry) = with_payload[rng.below(with_payload.len() as u64) as usize];
            let payload = entry.span.start + FRAME_HEADER_BYTES..entry.span.checked_end;
            let at = payload.start + rng.below(payload.len() as u64) as usize;
            let bit = rng.below(8) as u32;
            let label = format!(
                "payload t{} seq {} {}@{} byte {} bit {bit}",
                block.topic,
                entry.seq,
                file_name(base, block.file),
                entry.span.start,
                at - entry.span.start
            );
            flip(base, label, block.file, at, bit)
        })
        .collect()
}

fn truncations(base: &Base, last_blocks: usize) -> Vec<Damage> {
    let mut damages = Vec::new();
    for topic in 0..TOPICS {
        for block in base.last_blocks_of(topic, last_blocks) {
            for at in (block.start..block.end).step_by(8) {
                damages.push(Damage {
                    label: format!(
                        "zero to end t{topic} {}@{} from {}",
                        file_name(base, block.file),
                        block.start,
                        at - block.start
                    ),
                    file: block.file,
                    at,
                    bytes: vec![0; block.end - at],
                    must_report: Vec::new(),
                });
            }
        }
    }
    damages
}

fn sector_damages(base: &Base) -> Vec<Damage> {
    let mut rng = Rng(base.seed ^ 0x7365_6374_6f72);
    let mut damages = Vec::new();
    // Blocks in the order they were written, newest first.
    for block in base.blocks.iter().rev() {
        for at in (block.start..block.end).step_by(SECTOR_BYTES) {
            let where_ = format!(
                "t{} {}@{} sector {}",
                block.topic,
                file_name(base, block.file),
                block.start,
                (at - block.start) / SECTOR_BYTES
            );
            damages.push(Damage {
                label: format!("zeroed sector {where_}"),
                file: block.file,
                at,
                bytes: vec![0; SECTOR_BYTES],
                must_report: Vec::new(),
            });
            damages.push(Damage {
                label: format!("garbage sector {where_}"),
                file: block.file,
                at,
                bytes: (0..SECTOR_BYTES).map(|_| rng.next() as u8).collect(),
                must_report: Vec::new(),
            });
        }
    }
    damages
}

/// Where every block slot of the segment files starts: `(file, start)`.
fn slot_starts(base: &Base) -> Vec<(usize, usize)> {
    let header_len = FILE_HEADER_BYTES as usize;
    base.files
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| name.ends_with(".wal"))
        .flat_map(|(file, (_, bytes))| {
            (header_len..bytes.len())
                .step_by(base.block_bytes)
                .map(move |start| (file, start))
        })
        .collect()
}

/// Valid blocks in the wrong place: every block's image copied into a free slot (a
/// duplicated write), its first half copied into a free slot (an older image of it), and its
/// image copied over the next block of its topic and over a block of another topic (a
/// misdirected write). The topic keeps one copy of each entry and every block after the copy.
fn misplaced_blocks(base: &Base) -> Vec<Damage> {
    let mut rng = Rng(base.seed ^ 0x6d69_7364_6972);
    let starts = slot_starts(base);
    let mut damages = Vec::new();
    for (index, block) in base.blocks.iter().enumerate() {
        let Some(last) = block.entries.last() else {
            continue;
        };
        let image = &base.files[block.file].1[block.start..block.end];
        let half = block.entries.len().div_ceil(2);
        let half_end = block.entries[half - 1].span.checked_end - block.start;
        let (half_next, whole_next) = (block.entries[half - 1].seq + 1, last.seq + 1);
        let cursor = base.model.cursor[block.topic];
        let where_ = format!(
            "t{} {}@{}",
            block.topic,
            file_name(base, block.file),
            block.start
        );
        let mut push = |label: String, file: usize, at: usize, bytes: &[u8], copy_next: u64| {
            // A copy holding entries not yet consumed must be reported (naming either copy);
            // one wholly behind the cursor is consumed with the original, unread.
            let must_report = if copy_next > cursor {
                vec![
                    (block.file, block.start..block.end),
                    (file, at..at + bytes.len()),
                ]
            } else {
                Vec::new()
            };
            damages.push(Damage {
                label,
                file,
                at,
                bytes: bytes.to_vec(),
                must_report,
            });
        };
        // A free place for the image: no block there and nothing written.
        let fits = |(file, at): (usize, usize)| {
            at + image.len() <= base.files[file].1.len()
                && base
                    .blocks
                    .iter()
                    .all(|b| b.file != file || b.end <= at || b.start >= at + image.len())
                && base.files[file].1[at..at + image.len()]
                    .iter()
                    .all(|b| *b == 0)
        };
        let slots: Vec<(usize, usize)> = starts.iter().copied().filter(|s| fits(*s)).collect();
        if !slots.is_empty() {
            let (file, at) = slots[rng.below(slots.len() as u64) as usize];
            let dest = format!("{}@{at}", file_name(base, file));
            push(
                format!("copy of block {where_} into free {dest}"),
                file,
                at,
                image,
                whole_next,
            );
            let first_half = &image[..half_end];
            push(
                format!("first half of block {where_} into free {dest}"),
                file,
                at,
                first_half,
                half_next,
            );
        }
        let same = base.blocks[index + 1..]
            .iter()
            .find(|b| b.topic == block.topic);
        let others: Vec<&BlockLoc> = base
            .blocks
            .iter()
            .filter(|b| b.topic != block.topic)
            .collect();
        let other = (!others.is_empty()).then(|| others[rng.below(others.len() as u64) as usize]);
        // A shorter copy in front of the block (it sorts first): the longer one must win.
        let earlier: Vec<&&BlockLoc> = others
            .iter()
            .filter(|b| {
                (file_name(base, b.file), b.start) < (file_name(base, block.file), block.start)
            })
            .collect();
        let earlier =
            (!earlier.is_empty()).then(|| *earlier[rng.below(earlier.len() as u64) as usize]);
        for (what, target, len) in [
            ("next block of its topic", same, image.len()),
            ("a block of another topic", other, image.len()),
            (
                "an earlier block of another topic (first half)",
                earlier,
                half_end,
            ),
        ] {
            let Some(target) = target else { continue };
            // Cut at the file's end: the write lands where it lands.
            let room = base.files[target.file].1.len() - target.start;
            let bytes = &image[..len.min(room)];
            let copy_next = if len < image.len() {
                half_next
            } else {
                whole_next
            };
            let dest = format!(
                "t{} {}@{}",
                target.topic,
                file_name(base, target.file),
                target.start
            );
            push(
                format!("copy of block {where_} over {what} {dest}"),
                target.file,
                target.start,
                bytes,
                copy_next,
            );
        }
    }
    damages
}

fn cursor_slot_damages(base: &Base, all_bits: bool) -> Vec<Damage> {
    assert!(!base.slots.is_empty(), "the WAL persisted cursors");
    let mut rng = Rng(base.seed ^ 0x6375_7273_6f72);
    let mut damages = Vec::new();
    for slot in &base.slots {
        let where_ = format!(
            "t{} gen {} {}@{}",
            slot.topic,
            slot.generation,
            file_name(base, slot.file),
            slot.span.start
        );
        damages.push(Damage {
            label: format!("zeroed slot {where_}"),
            file: slot.file,
            at: slot.span.start,
            bytes: vec![0; CURSOR_SLOT_BYTES],
            must_report: Vec::new(),
        });
        damages.push(Damage {
            label: format!("garbage slot {where_}"),
            file: slot.file,
            at: slot.span.start,
            bytes: (0..CURSOR_SLOT_BYTES).map(|_| rng.next() as u8).collect(),
            must_report: Vec::new(),
        });
        // Header bytes (magic, version, kind, length, aux = slot, generation, checksum), then
        // the cursor's sequence number and the last byte of the topic name.
        let header: Vec<usize> = if all_bits {
            (0..FRAME_HEADER_BYTES).collect()
        } else {
            vec![0, 4, 5, 8, 12, 16, 24]
        };
        let cursor = [FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 7];
        let checked = slot.span.checked_end - slot.span.start;
        let name = (checked > FRAME_HEADER_BYTES + 32).then_some(checked - 1);
        for byte in header.into_iter().chain(cursor).chain(name) {
            for bit in 0..8 {
                let label = format!("slot {where_} byte {byte} bit {bit}");
                damages.push(flip(base, label, slot.file, slot.span.start + byte, bit));
            }
        }
    }
    damages
}

#[test]
fn corruption_corpus_header_bit_flips_are_skipped_and_reported() {
    let (seed, sizes, started) = setup("header_bits");
    run_class(
        "header_bits",
        seed,
        sizes.header_wals,
        Shape {
            entries: sizes.header_wal_entries,
            block_bytes: SMALL_BLOCK_BYTES,
            cursors: false,
        },
        started,
        |base| header_bit_flips(base, sizes.all_name_bits),
    );
}

#[test]
fn corruption_corpus_payload_bit_flips_are_skipped_and_reported() {
    let (seed, sizes, started) = setup("payload_bits");
    run_class("payload_bits", seed, 1, sizes.shape(), started, |base| {
        payload_bit_flips(base, sizes.payload_flips)
    });
}

#[test]
fn corruption_corpus_truncated_last_blocks_keep_every_entry_before_the_cut() {
    let (seed, sizes, started) = setup("truncation");
    run_class("truncation", seed, 1, sizes.shape(), started, |base| {
        truncations(base, sizes.truncated_blocks)
    });
}

#[test]
fn corruption_corpus_zeroed_and_garbage_sectors_never_return_bad_entries() {
    let (seed, sizes, started) = setup("sectors");
    run_class("sectors", seed, 1, sizes.shape(), started, sector_damages);
}

#[test]
fn corruption_corpus_damaged_cursor_slot_falls_back_to_the_other_slot() {
    let (seed, sizes, started) = setup("cursor_slots");
    run_class("cursor_slots", seed, 1, sizes.shape(), started, |base| {
        cursor_slot_damages(base, sizes.all_slot_bits)
    });
}

/// Runs the one damage `pick` chooses on a fixed WAL and fails on any violation: the smallest
/// replay of a kind of case the corpus covers.
#[test]
fn corruption_corpus_misplaced_or_duplicated_blocks_keep_the_rest_of_the_topic() {
    let (seed, sizes, started) = setup("misplaced_blocks");
    run_class(
        "misplaced_blocks",
        seed,
        1,
        sizes.shape(),
        started,
        misplaced_blocks,
    );
}

fn run_single(class: &str, pick: impl Fn(&Base) -> Damage) {
    let started = Instant::now();
    let shape = Shape {
        entries: 200,
        block_bytes: BLOCK_BYTES,
        cursors: false,
    };
    run_class(class, 1, 1, shape, started, |base| vec![pick(base)]);
}

/// The first block of the first topic that has more than one block: a sealed block with a
/// successor.
fn sealed_block(base: &Base) -> &BlockLoc {
    (0..TOPICS)
        .find_map(|t| {
            let blocks = base.last_blocks_of(t, usize::MAX);
            (blocks.len() > 1).then(|| blocks[0])
        })
        .expect("a topic with several blocks")
}

#[test]
fn corruption_corpus_flipped_bit_in_last_entry_of_sealed_block_is_reported_and_later_blocks_kept() {
    run_single("sealed_block_last_entry", |base| {
        let block = sealed_block(base);
        let entry = block.entries.last().expect("entries");
        let label = format!(
            "checksum bit of the last entry (seq {}) of sealed block t{} {}@{}",
            entry.seq,
            block.topic,
            file_name(base, block.file),
            block.start
        );
        flip(base, label, block.file, entry.span.start + 24, 0)
    });
}

#[test]
fn corruption_corpus_damaged_header_of_sealed_block_keeps_the_later_blocks() {
    run_single("sealed_block_header", |base| {
        let block = sealed_block(base);
        let label = format!(
            "seq bit of the header of sealed block t{} {}@{}",
            block.topic,
            file_name(base, block.file),
            block.start
        );
        flip(base, label, block.file, block.start + 16, 0)
    });
}
