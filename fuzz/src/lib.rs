//! Shared code of the fuzz targets (docs: shared RELIABILITY.md T8, invariant I8: no panic,
//! hang or out-of-bounds read on any input).
//!
//! - A *dir image*: a compact container that describes a WAL directory (segment files, cursor
//!   files, markers) as chunks of non-zero bytes, so a seed made from a real WAL stays small
//!   and libFuzzer can mutate headers, names and geometry as well as contents.
//! - A deterministic small WAL to seed from ([`build_wal`]).
//! - [`refresh_checksums`]: recomputes the checksum of every frame-looking header, so that a
//!   mutated `seq`, `aux`, length or topic name gets past the checksum and reaches recovery.
//! - [`check_dir`]: the checks run on every directory: open read-only (which must not write),
//!   open normally twice (the second recovery must find what the first did), read everything
//!   with `read_from`, `read_next` and `batch_read`, append, and open a third time.
//! - [`v020`]: the input and the checks of the walrus-rust 0.2.0 reader's target.

pub mod v020;

use std::{collections::BTreeMap, sync::Arc};

use walrus_alloc::{AllocConfig, file_name, parse_file_name};
use walrus_storage::{
    BackendKind, FRAME_ALIGN, FRAME_HEADER_BYTES, FRAME_MAGIC, FaultyStorage, Storage,
    frame_checksum,
};
use walrus_topic::{
    Engine, EngineConfig, FORMAT_VERSION, FsyncSchedule, ReadConsistency, ReadEntry,
};

/// Block geometry of the engines the targets open: small, so a few entries span several
/// blocks and files.
pub const BLOCK_BYTES: u64 = 1024;
/// Blocks per segment file.
pub const BLOCKS_PER_FILE: u32 = 4;
/// Bytes of a cursor file (256-byte slots, two per topic, 1024 topics; docs/FORMAT.md).
pub const CURSOR_FILE_BYTES: u64 = 256 * 2 * 1024;
/// Name of the first cursor file.
pub const CURSOR_FILE_NAME: &str = "cursors-0000.idx";
/// The clean-close and poisoned markers (docs/FORMAT.md, "Marker files").
pub const CLEAN_MARKER: &str = "CLEAN";
/// See [`CLEAN_MARKER`].
pub const POISON_MARKER: &str = "POISONED";
/// Longest file a dir image makes: larger files only slow every execution down.
pub const FILE_BYTES_MAX: u64 = CURSOR_FILE_BYTES;
/// Most files in a dir image.
pub const FILES_MAX: usize = 8;
/// Dir image flag: recompute the checksum of every frame-looking header.
pub const FLAG_REFRESH_CHECKSUMS: u8 = 1;

/// Header fields the checksum refresh reads (docs/FORMAT.md, "Frame"): the version and kind
/// bytes, the payload length, and where the checksum sits. The storage crate keeps these
/// offsets private; they are part of the documented, versioned format.
const VERSION_OFFSET: usize = 4;
const KIND_OFFSET: usize = 5;
const LEN_OFFSET: usize = 8;
const CHECKSUM_OFFSET: usize = 24;

/// The files of a directory, by name.
pub type Files = BTreeMap<String, Vec<u8>>;

/// The engine configuration of every target: in-memory storage, small blocks, no background
/// threads (no pre-created files, no timed fsync), so an execution is deterministic.
pub fn config(read_only: bool) -> EngineConfig {
    config_with_blocks(read_only, BLOCK_BYTES)
}

/// [`config`] with another block size (new files only: recovery reads each file's own).
pub fn config_with_blocks(read_only: bool, block_bytes: u64) -> EngineConfig {
    EngineConfig {
        dir: "<fuzz>".into(),
        backend: BackendKind::Faulty,
        alloc: AllocConfig {
            block_bytes,
            blocks_per_file: BLOCKS_PER_FILE,
            // 256-byte units: topics start in small files and grow into the 1 KiB blocks.
            small_unit_bytes: walrus_alloc::SMALL_UNIT_BYTES_MIN,
            lanes: 1,
            precreate: false,
            quiet: true,
        },
        fsync: FsyncSchedule::SyncEach,
        wait_for_batches: false,
        quiet: true,
        read_only,
        file_mode: walrus_storage::DEFAULT_FILE_MODE,
        import: Default::default(),
        // Fields added later take what `Walrus::build` uses.
        ..EngineConfig::default()
    }
}

/// Opens an engine over `storage`.
pub fn open(storage: &FaultyStorage, read_only: bool) -> walrus_topic::Result<Arc<Engine>> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config(read_only))
}

/// Every file of `storage` with its current bytes.
pub fn copy_files(storage: &FaultyStorage) -> Files {
    let names = storage.list().expect("list an in-memory storage");
    names
        .into_iter()
        .map(|name| {
            let segment = storage.open(&name).expect("open a listed file");
            let mut bytes = vec![0u8; segment.len() as usize];
            segment.read_at(0, &mut bytes).expect("read a whole file");
            (name, bytes)
        })
        .collect()
}

/// A fresh storage holding `files`, all durable.
pub fn storage_with(files: &Files) -> FaultyStorage {
    let storage = FaultyStorage::new();
    for (name, bytes) in files {
        let segment = storage
            .create(name, bytes.len() as u64)
            .expect("create a file in memory");
        if let Some(first) = bytes.iter().position(|b| *b != 0) {
            segment
                .write_at(first as u64, &bytes[first..])
                .expect("write inside the file");
        }
        segment.sync().expect("sync in memory");
    }
    storage
}

/// Topics of [`build_wal`]; the empty name is a valid topic.
pub const TOPICS: [&str; 3] = ["alpha", "b", ""];

fn payload(i: usize) -> Vec<u8> {
    // Mostly small entries, a few larger than a block (multi-block extents).
    let len = if i % 11 == 10 { 1500 } else { (i * 37) % 300 };
    let mut data = format!("{i}:").into_bytes();
    data.extend((0..len).map(|j| (i + j) as u8));
    data
}

/// A small valid WAL: `entries` appends over [`TOPICS`] (every fifth a batch of three),
/// spanning several blocks and files; with `consume`, some entries are read with checkpoint so
/// that cursor slots exist. The engine is closed cleanly (the `CLEAN` marker is left).
pub fn build_wal(entries: usize, consume: bool) -> Files {
    build_wal_with_blocks(entries, consume, BLOCK_BYTES)
}

/// [`build_wal`] with blocks of `block_bytes` (for example one that is not a multiple of 8).
pub fn build_wal_with_blocks(entries: usize, consume: bool, block_bytes: u64) -> Files {
    let storage = FaultyStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    let engine = Engine::open_with_storage(shared, config_with_blocks(false, block_bytes))
        .expect("open an empty storage");
    let sync = FsyncSchedule::SyncEach;
    for i in 0..entries {
        let topic = TOPICS[i % TOPICS.len()];
        if i % 5 == 4 {
            let batch = [payload(i), payload(i + 1), payload(i + 2)];
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            engine
                .batch_append(topic, &refs, sync)
                .expect("batch append");
        } else {
            engine.append(topic, &payload(i), sync).expect("append");
        }
    }
    if consume {
        for (t, topic) in TOPICS.iter().enumerate() {
            // Topic t gets t + 1 persisted cursor moves: both slot halves get used.
            for _ in 0..=t {
                engine
                    .read_next(topic, true, ReadConsistency::StrictlyAtOnce)
                    .expect("read with checkpoint");
            }
        }
    }
    drop(engine);
    copy_files(&storage)
}

/// Recomputes the checksum of every frame-looking header at an aligned offset of `bytes`
/// (magic, current version, non-zero kind, payload inside the buffer).
pub fn refresh_checksums(bytes: &mut [u8]) {
    let mut pos = 0;
    while pos + FRAME_HEADER_BYTES <= bytes.len() {
        let head = &bytes[pos..pos + FRAME_HEADER_BYTES];
        let looks_like_frame = head[..FRAME_MAGIC.len()] == FRAME_MAGIC
            && head[VERSION_OFFSET] == FORMAT_VERSION
            && head[KIND_OFFSET] != 0;
        if looks_like_frame {
            let mut len = [0u8; 4];
            len.copy_from_slice(&head[LEN_OFFSET..LEN_OFFSET + 4]);
            let end = (pos + FRAME_HEADER_BYTES).checked_add(u32::from_le_bytes(len) as usize);
            if let Some(end) = end.filter(|end| *end <= bytes.len()) {
                let sum = frame_checksum(
                    &bytes[pos..pos + CHECKSUM_OFFSET],
                    &bytes[pos + FRAME_HEADER_BYTES..end],
                );
                bytes[pos + CHECKSUM_OFFSET..pos + FRAME_HEADER_BYTES]
                    .copy_from_slice(&sum.to_le_bytes());
            }
        }
        pos += FRAME_ALIGN;
    }
}

/// A WAL directory as a fuzz input.
///
/// ```text
/// image  := flags:u8 record*                       (at most FILES_MAX records are read)
/// record := kind:u8 number:u64 len:u32 chunks:u8 chunk{chunks}
/// chunk  := offset:u32 n:u16 bytes[n]              (clipped to the file)
/// ```
/// All integers are little-endian. `kind % 3`: 0 a segment file named after `number` (any
/// u64), 1 cursor file `number % 10000`, 2 a marker (`CLEAN` if `number` is even, else
/// `POISONED`). A file is `len % (FILE_BYTES_MAX + 1)` zero bytes with the chunks written
/// over them. Parsing is total: a truncated record keeps what it got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirImage {
    /// `FLAG_*` bits.
    pub flags: u8,
    /// The files.
    pub files: Files,
}

/// Takes bytes and little-endian integers off the front of a fuzz input (also used by
/// `v020.rs`).
pub(crate) struct Reader<'a> {
    pub(crate) data: &'a [u8],
}

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    pub(crate) fn uint(&mut self, n: usize) -> u64 {
        self.take(n)
            .iter()
            .rev()
            .fold(0, |acc, b| (acc << 8) | u64::from(*b))
    }
}

fn cursor_file_name(index: u64) -> String {
    format!("cursors-{:04}.idx", index % 10_000)
}

impl DirImage {
    /// Reads an image from fuzz input; never fails.
    pub fn parse(data: &[u8]) -> Self {
        let mut r = Reader { data };
        let flags = r.uint(1) as u8;
        let mut files = Files::new();
        while !r.data.is_empty() && files.len() < FILES_MAX {
            let kind = r.uint(1) % 3;
            let number = r.uint(8);
            let len = r.uint(4) % (FILE_BYTES_MAX + 1);
            let chunks = r.uint(1);
            let name = match kind {
                0 => file_name(number),
                1 => cursor_file_name(number),
                _ if number.is_multiple_of(2) => CLEAN_MARKER.to_owned(),
                _ => POISON_MARKER.to_owned(),
            };
            let mut bytes = vec![0u8; len as usize];
            for _ in 0..chunks {
                let offset = r.uint(4) as usize;
                let n = r.uint(2) as usize;
                let chunk = r.take(n);
                if offset < bytes.len() {
                    let n = chunk.len().min(bytes.len() - offset);
                    bytes[offset..offset + n].copy_from_slice(&chunk[..n]);
                }
            }
            files.insert(name, bytes);
        }
        Self { flags, files }
    }

    /// The files with the flags applied.
    pub fn into_files(self) -> Files {
        let mut files = self.files;
        if self.flags & FLAG_REFRESH_CHECKSUMS != 0 {
            for bytes in files.values_mut() {
                refresh_checksums(bytes);
            }
        }
        files
    }

    /// Encodes the image (for the seed corpus): each file's non-zero stretches become chunks.
    ///
    /// # Panics
    ///
    /// On a file name the format has no kind for, or a file longer than [`FILE_BYTES_MAX`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags];
        for (name, bytes) in &self.files {
            let (kind, number) = if let Some(seq) = parse_file_name(name) {
                (0u8, seq)
            } else if let Some(index) = name
                .strip_prefix("cursors-")
                .and_then(|n| n.strip_suffix(".idx"))
            {
                (1, index.parse().expect("a cursor file number"))
            } else if name == CLEAN_MARKER {
                (2, 0)
            } else if name == POISON_MARKER {
                (2, 1)
            } else {
                panic!("no dir image kind for file {name:?}");
            };
            assert!(bytes.len() as u64 <= FILE_BYTES_MAX, "{name} is too long");
            let chunks = nonzero_stretches(bytes);
            assert!(
                chunks.len() <= usize::from(u8::MAX),
                "{name}: too many chunks"
            );
            out.push(kind);
            out.extend_from_slice(&number.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.push(chunks.len() as u8);
            for (start, end) in chunks {
                out.extend_from_slice(&(start as u32).to_le_bytes());
                out.extend_from_slice(&((end - start) as u16).to_le_bytes());
                out.extend_from_slice(&bytes[start..end]);
            }
        }
        out
    }
}

/// Stretches of `bytes` that hold non-zero bytes, joined across runs of fewer than 64 zeros
/// and cut at 64 KiB (a chunk's length is a u16).
pub fn nonzero_stretches(bytes: &[u8]) -> Vec<(usize, usize)> {
    const GAP: usize = 64;
    const CHUNK_MAX: usize = u16::MAX as usize;
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        if *b == 0 {
            continue;
        }
        match out.last_mut() {
            Some((start, end)) if i < *end + GAP && i - *start < CHUNK_MAX => *end = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

/// What an open engine shows: per topic, its next sequence number and every entry
/// `read_from` returns from 0.
pub type Snapshot = BTreeMap<String, (u64, Vec<ReadEntry>)>;

/// An upper bound on the entries any directory made of `files` can hold (plus what the
/// checks append): a read loop that goes past it does not end.
pub fn entries_bound(files: &Files) -> usize {
    let bytes: usize = files.values().map(Vec::len).sum();
    bytes / FRAME_HEADER_BYTES + 16
}

fn strictly_increasing(entries: &[ReadEntry]) -> bool {
    entries.windows(2).all(|w| w[0].seq < w[1].seq)
}

/// Reads every topic with `read_from` and checks what comes back: sequence numbers strictly
/// increasing and below the topic's next one, the cursor within the data, and a read from
/// the middle returning the same suffix.
pub fn snapshot(engine: &Engine, bound: usize) -> Snapshot {
    // Display and figures must not panic on anything recovery found either.
    for finding in engine.findings() {
        let _ = finding.to_string();
    }
    let _ = engine.stats();
    let _ = engine.files_info();
    let mut out = Snapshot::new();
    for info in engine.topics_info() {
        assert!(
            info.cursor <= info.next_seq,
            "topic {:?}: cursor {} past the data (next seq {})",
            info.name,
            info.cursor,
            info.next_seq
        );
        let all = engine
            .read_from(&info.name, 0, usize::MAX)
            .unwrap_or_default();
        assert!(all.len() <= bound, "read_from returned more than can exist");
        assert!(
            strictly_increasing(&all),
            "topic {:?}: read_from out of order",
            info.name
        );
        if let Some(last) = all.last() {
            assert!(
                last.seq < info.next_seq,
                "topic {:?}: entry {} at or past next seq {}",
                info.name,
                last.seq,
                info.next_seq
            );
            let middle = all[all.len() / 2].seq;
            if let Ok(suffix) = engine.read_from(&info.name, middle, usize::MAX) {
                let want: Vec<&ReadEntry> = all.iter().filter(|e| e.seq >= middle).collect();
                let got: Vec<&ReadEntry> = suffix.iter().collect();
                assert_eq!(
                    got, want,
                    "topic {:?}: read_from({middle}) is not the suffix of read_from(0)",
                    info.name
                );
            }
        }
        out.insert(info.name, (info.next_seq, all));
    }
    out
}

/// Reads `topic` from its cursor to the end, with `read_next` or with small `batch_read`s,
/// checkpointing; checks order and, when the drain ends cleanly, that it delivered a suffix
/// of what `read_from(0)` returned (`all`). Returns whether it ended cleanly.
fn drain(engine: &Engine, topic: &str, batches: bool, all: &[ReadEntry], bound: usize) -> bool {
    let mode = ReadConsistency::AtLeastOnce { persist_every: 1 };
    let mut drained: Vec<ReadEntry> = Vec::new();
    let clean = loop {
        let got = if batches {
            engine.batch_read(topic, 64, true, mode)
        } else {
            engine
                .read_next(topic, true, mode)
                .map(|e| e.into_iter().collect())
        };
        match got {
            Ok(entries) if entries.is_empty() => break true,
            Ok(entries) => drained.extend(entries),
            Err(_) => break false,
        }
        assert!(
            drained.len() <= bound,
            "topic {topic:?}: the drain does not end"
        );
    };
    assert!(
        strictly_increasing(&drained),
        "topic {topic:?}: drain out of order"
    );
    if clean {
        assert!(
            all.ends_with(&drained),
            "topic {topic:?}: the drain is not a suffix of read_from(0)"
        );
    }
    clean
}

/// The checks of one directory (see the module docs). Errors from opens, reads and appends
/// are allowed (damaged input may be refused); panics, hangs and broken invariants are not.
pub fn check_dir(files: &Files) {
    let storage = storage_with(files);
    let bound = entries_bound(files);
    if let Ok(engine) = open(&storage, true) {
        let snap = snapshot(&engine, bound);
        for name in snap.keys() {
            let _ = engine.read_next(name, false, ReadConsistency::StrictlyAtOnce);
        }
    }
    assert!(
        copy_files(&storage) == *files,
        "a read-only open changed the files"
    );
    let Ok(first) = open(&storage, false) else {
        return;
    };
    let first_snapshot = snapshot(&first, bound);
    drop(first);
    let second = match open(&storage, false) {
        Ok(engine) => engine,
        Err(err) => panic!("the second open failed after a successful first: {err}"),
    };
    let second_snapshot = snapshot(&second, bound);
    assert_eq!(
        first_snapshot, second_snapshot,
        "a second recovery without writes found different topics"
    );
    let mut names: Vec<&String> = second_snapshot.keys().collect();
    let new_topic = "fuzz-new-topic".to_owned();
    names.push(&new_topic);
    for (index, name) in names.iter().enumerate() {
        let all = second_snapshot
            .get(*name)
            .map_or(&[][..], |(_, all)| &all[..]);
        let drained = drain(&second, name, index % 2 == 1, all, bound);
        let before = second.topic_info_of(name).map_or(0, |info| info.next_seq);
        let data = format!("appended to {name}").into_bytes();
        if second.append(name, &data, FsyncSchedule::SyncEach).is_err() {
            continue;
        }
        let entry = ReadEntry { seq: before, data };
        let back = second.read_from(name, before, usize::MAX);
        assert_eq!(
            back.ok(),
            Some(vec![entry.clone()]),
            "topic {name:?}: the entry just appended does not read back"
        );
        // (An error is allowed: a damaged or short cursor file may refuse the persist.)
        let next = second.read_next(name, true, ReadConsistency::StrictlyAtOnce);
        if let (true, Ok(next)) = (drained, next) {
            assert_eq!(
                next,
                Some(entry),
                "topic {name:?}: read_next after the drain misses the new entry"
            );
        }
    }
    drop(second);
    if let Ok(third) = open(&storage, false) {
        snapshot(&third, bound);
    }
}
