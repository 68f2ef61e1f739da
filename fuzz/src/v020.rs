//! The `v020_reader` target's input and checks: a walrus-rust 0.2.0 directory (data files, the
//! cursor index and a user `WalIndex` file) as fuzz input, written to a real directory (the
//! reader reads only files), read in full with `walrus_v020`.
//!
//! 0.2.0's data files are 1,000 MiB sparse files carved into 10 MiB block slots. An image keeps
//! its data files sparse: up to [`SLOTS`] slots, each a few chunks of bytes over zeros, so a
//! seed made from a real 0.2.0 directory stays small and mutations move bytes within and
//! between slots, near a slot's start (entries) or its end (entries torn at a block's end).

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use crate::Reader;
use walrus_v020::{
    BlockPos, HeaderError, LegacyDir, decode_index, fnv1a64,
    format::{BLOCK_BYTES, CURSOR_INDEX_FILE, HEADER_BYTES},
    read_index_file,
};

/// Block slots a data file of an image spans: a data file is at most `SLOTS` x 10 MiB long
/// (sparse). Two, enough for a block after another: the reader reads a block whole and scans
/// its tail byte by byte, which with libFuzzer's comparison tracing costs about 15 ms per
/// 10 MiB, so every slot more slows down the executions that use it.
pub const SLOTS: u64 = 2;
/// Longest data file of an image.
pub const DATA_FILE_BYTES_MAX: u64 = SLOTS * BLOCK_BYTES;
/// How far from its slot's start (or end) a chunk may be placed.
pub const REACH: u64 = 1 << 20;
/// Most data files in an image.
pub const DATA_FILES_MAX: usize = 4;
/// Name of the user `WalIndex` file an image holds (`WalIndex::new("fuzz")` in 0.2.0).
pub const WAL_INDEX_FILE: &str = "fuzz_index.db";
/// Image flag: recompute the FNV-1a checksum of every entry-looking header, so that mutated
/// payloads, lengths and topic names get past the checksum.
pub const FLAG_REFRESH_CHECKSUMS: u8 = 1;
/// Image flag: no cursor index file (0.2.0 before its first checkpointed read).
pub const FLAG_NO_CURSOR_INDEX: u8 = 2;
/// Chunk placement bit: the offset counts back from the end of the slot.
pub const PLACE_FROM_END: u8 = 0x80;

/// First data file name: 0.2.0 names its files after a millisecond timestamp (13 digits).
const DATA_FILE_NAME_BASE: u64 = 1_733_000_000_000;

/// A sparse file: `len` bytes, zero except where a chunk says (later chunks win).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparseFile {
    /// Apparent length.
    pub len: u64,
    /// `(file offset, bytes)`, each inside `len`.
    pub chunks: Vec<(u64, Vec<u8>)>,
}

impl SparseFile {
    /// The `n` bytes at `pos` (zeros past the end).
    pub fn read(&self, pos: u64, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let end = pos.saturating_add(n as u64);
        for (at, bytes) in &self.chunks {
            let chunk_end = at + bytes.len() as u64;
            if chunk_end <= pos || *at >= end {
                continue;
            }
            let from = pos.max(*at);
            let to = end.min(chunk_end);
            out[(from - pos) as usize..(to - pos) as usize]
                .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
        }
        out
    }

    fn write(&mut self, pos: u64, bytes: &[u8]) {
        self.chunks.push((pos, bytes.to_vec()));
    }
}

/// A 0.2.0 directory as a fuzz input.
///
/// ```text
/// image  := flags:u8 cursor_len:u16 cursor[cursor_len] index_len:u16 index[index_len] file*
/// file   := number:u8 extra:u16 chunks:u8 chunk{chunks}    (at most DATA_FILES_MAX files)
/// chunk  := place:u8 offset:u32 n:u16 bytes[n]
/// ```
/// All integers are little-endian; the leading lengths choose where the input splits. A data
/// file is named `1733000000000 + number` (13 digits, like 0.2.0's timestamps); a chunk sits in
/// slot `(place & 0x7f) % SLOTS`, `offset % REACH` bytes after the slot's start, or with
/// [`PLACE_FROM_END`] `1 + offset % REACH` bytes before its end. The file is as long as its
/// last chunk's end plus `extra` zeros, clipped to [`DATA_FILE_BYTES_MAX`]. Parsing is total: a
/// truncated input keeps what it got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V020Image {
    /// `FLAG_*` bits.
    pub flags: u8,
    /// The cursor index file `read_offset_idx_index.db`.
    pub cursor_index: Vec<u8>,
    /// The user `WalIndex` file [`WAL_INDEX_FILE`].
    pub wal_index: Vec<u8>,
    /// The data files by name.
    pub data: BTreeMap<String, SparseFile>,
}

/// The data file name of `number`.
pub fn data_file_name(number: u8) -> String {
    (DATA_FILE_NAME_BASE + u64::from(number)).to_string()
}

impl V020Image {
    /// Reads an image from fuzz input; never fails.
    pub fn parse(input: &[u8]) -> Self {
        let mut r = Reader { data: input };
        let flags = r.uint(1) as u8;
        let n = r.uint(2) as usize;
        let cursor_index = r.take(n).to_vec();
        let n = r.uint(2) as usize;
        let wal_index = r.take(n).to_vec();
        let mut data = BTreeMap::new();
        while !r.data.is_empty() && data.len() < DATA_FILES_MAX {
            let number = r.uint(1) as u8;
            let extra = r.uint(2);
            let chunks = r.uint(1);
            let mut file = SparseFile::default();
            let mut end = 0u64;
            for _ in 0..chunks {
                let place = r.uint(1) as u8;
                let offset = r.uint(4) % REACH;
                let n = r.uint(2) as usize;
                let bytes = r.take(n);
                let slot = u64::from(place & !PLACE_FROM_END) % SLOTS;
                let pos = if place & PLACE_FROM_END == 0 {
                    slot * BLOCK_BYTES + offset
                } else {
                    (slot + 1) * BLOCK_BYTES - 1 - offset
                };
                let keep = (DATA_FILE_BYTES_MAX - pos).min(bytes.len() as u64) as usize;
                if keep > 0 {
                    file.write(pos, &bytes[..keep]);
                    end = end.max(pos + keep as u64);
                }
            }
            file.len = (end + extra).min(DATA_FILE_BYTES_MAX);
            data.insert(data_file_name(number), file);
        }
        Self {
            flags,
            cursor_index,
            wal_index,
            data,
        }
    }

    /// Encodes the image (for the seed corpus); `parse(encode())` gives it back when every
    /// chunk lies in the first [`REACH`] bytes of a slot and the files are named by
    /// [`data_file_name`].
    ///
    /// # Panics
    ///
    /// On a chunk that the format cannot place, or too many or too long parts.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags];
        for part in [&self.cursor_index, &self.wal_index] {
            let len = u16::try_from(part.len()).expect("an index file of at most 64 KiB");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(part);
        }
        assert!(self.data.len() <= DATA_FILES_MAX, "too many data files");
        for (name, file) in &self.data {
            let number = name
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_sub(DATA_FILE_NAME_BASE))
                .and_then(|n| u8::try_from(n).ok())
                .expect("a data file named by data_file_name");
            let end = file
                .chunks
                .iter()
                .map(|(at, b)| at + b.len() as u64)
                .max()
                .unwrap_or(0);
            let extra = u16::try_from(file.len - end).expect("at most 64 KiB of trailing zeros");
            out.push(number);
            out.extend_from_slice(&extra.to_le_bytes());
            out.push(u8::try_from(file.chunks.len()).expect("at most 255 chunks"));
            for (at, bytes) in &file.chunks {
                let (slot, offset) = (at / BLOCK_BYTES, at % BLOCK_BYTES);
                assert!(
                    slot < SLOTS && offset < REACH,
                    "chunk at {at} cannot be placed"
                );
                out.push(slot as u8);
                out.extend_from_slice(&(offset as u32).to_le_bytes());
                out.extend_from_slice(&u16::try_from(bytes.len()).expect("chunk").to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// The image with the flags applied.
    pub fn into_applied(mut self) -> Self {
        if self.flags & FLAG_REFRESH_CHECKSUMS != 0 {
            for file in self.data.values_mut() {
                refresh_checksums(file);
            }
        }
        self
    }
}

/// An entry header as the format says (docs/FORMAT.md, SPEC 4.3): `meta_len` then an rkyv
/// archive whose root struct is its last 32 bytes: `read_size` u32 at 0, the checksum u64 at
/// 24. `None` unless `meta_len` leaves room for the root. Returns (payload length, offset of
/// the checksum in the header, checksum).
fn header_fields(header: &[u8]) -> Option<(u64, usize, u64)> {
    let meta_len = usize::from(u16::from_le_bytes([header[0], header[1]]));
    if !(32..=HEADER_BYTES - 2).contains(&meta_len) {
        return None;
    }
    let root = 2 + meta_len - 32;
    let size = u32::from_le_bytes(header[root..root + 4].try_into().ok()?);
    let sum = u64::from_le_bytes(header[root + 24..root + 32].try_into().ok()?);
    Some((u64::from(size), root + 24, sum))
}

/// Recomputes the checksum of every entry-looking header, walking each slot's entries from
/// its start as 0.2.0 packs them.
pub fn refresh_checksums(file: &mut SparseFile) {
    for slot in 0..file.len.div_ceil(BLOCK_BYTES) {
        let mut at = slot * BLOCK_BYTES;
        while at + HEADER_BYTES as u64 <= file.len {
            let header = file.read(at, HEADER_BYTES);
            let Some((size, sum_at, _)) = header_fields(&header) else {
                break;
            };
            let start = at + HEADER_BYTES as u64;
            if start + size > file.len {
                break;
            }
            let sum = fnv1a64(&file.read(start, size as usize));
            file.write(at + sum_at as u64, &sum.to_le_bytes());
            at = start + size;
        }
    }
}

/// Prefix of the scratch directories, one per process.
const SCRATCH_PREFIX: &str = "walrus-fuzz-v020-";

/// A directory of this process for the images, emptied before each one: on tmpfs when there
/// is one. The first call removes those of processes that are gone (libFuzzer has no hook at
/// exit, and a crash leaves its files for a look).
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        for entry in fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX));
            if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create the scratch directory");
        dir
    })
}

fn clear(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `image` into `dir` (which must exist and be empty).
pub fn write_image(dir: &Path, image: &V020Image) {
    for (name, file) in &image.data {
        let f = fs::File::create(dir.join(name)).expect("create a data file");
        f.set_len(file.len).expect("size a data file");
        for (at, bytes) in &file.chunks {
            f.write_all_at(bytes, *at).expect("write a data file");
        }
    }
    if image.flags & FLAG_NO_CURSOR_INDEX == 0 {
        fs::write(dir.join(CURSOR_INDEX_FILE), &image.cursor_index).expect("write the cursors");
    }
    fs::write(dir.join(WAL_INDEX_FILE), &image.wal_index).expect("write the WalIndex file");
}

/// The last position per key, as a map built from `entries` in order keeps it.
fn last_by_key(entries: &[(String, BlockPos)]) -> HashMap<&str, BlockPos> {
    entries.iter().map(|(k, p)| (k.as_str(), *p)).collect()
}

fn check_index(bytes: &[u8]) -> Result<Vec<(String, BlockPos)>, HeaderError> {
    let decoded = decode_index(bytes);
    if let Ok(entries) = &decoded {
        assert!(
            entries.windows(2).all(|w| w[0].0 <= w[1].0),
            "decode_index: keys not sorted"
        );
        // Each key takes at least its 8-byte string repr and a 16-byte position.
        assert!(
            entries.len() <= bytes.len() / 24 + 1,
            "decode_index: more keys than bytes"
        );
    } else if let Err(err) = &decoded {
        let _ = err.to_string();
    }
    // (Errors are not compared: rkyv's messages can hold a heap address.)
    assert_eq!(
        decode_index(bytes).ok(),
        decoded.clone().ok(),
        "decode_index is not deterministic"
    );
    decoded
}

/// The checks of one image (see `fuzz_targets/v020_reader.rs`).
pub fn check_image(image: &V020Image) {
    let dir = scratch_dir();
    clear(dir);
    write_image(dir, image);

    let wal_index = check_index(&image.wal_index);
    let read = read_index_file(&dir.join(WAL_INDEX_FILE)).expect("read the WalIndex file");
    assert_eq!(
        read.ok(),
        wal_index.ok(),
        "read_index_file differs from decode_index"
    );
    let cursors =
        (image.flags & FLAG_NO_CURSOR_INDEX == 0).then(|| check_index(&image.cursor_index));

    let legacy = LegacyDir::open(dir).expect("open: only I/O may fail, and the files are fine");
    for damage in legacy.damage() {
        let _ = damage.to_string();
    }
    let persisted: HashMap<&str, BlockPos> = match &cursors {
        Some(Ok(entries)) => last_by_key(entries),
        _ => HashMap::new(),
    };
    let topics: Vec<&str> = legacy.topics().collect();
    for topic in topics.iter().copied().chain(legacy.cursor_only_topics()) {
        assert_eq!(
            legacy.persisted_cursor(topic),
            persisted.get(topic).copied(),
            "topic {topic:?}: persisted cursor differs from the decoded index"
        );
    }
    for topic in legacy.cursor_only_topics() {
        assert!(
            !topics.contains(&topic),
            "{topic:?}: cursor-only and with blocks"
        );
    }
    // Blocks start at distinct slots: no reader returns more blocks than there are slots.
    let slots: u64 = image
        .data
        .values()
        .map(|f| f.len.div_ceil(BLOCK_BYTES))
        .sum();
    let bytes: u64 = image.data.values().map(|f| f.len).sum();
    let mut entries_total = 0u64;
    for topic in &topics {
        assert!(
            !topic.is_empty(),
            "the empty topic's blocks are dropped, as in 0.2.0"
        );
        let mut reader = legacy.pending(topic);
        let start = reader.start();
        let mut blocks = 0u64;
        while let Some(block) = reader
            .next_block()
            .expect("read a block: the files are fine")
        {
            blocks += 1;
            assert!(blocks <= slots, "{topic:?}: more blocks than slots");
            for damage in block.damage {
                let _ = damage.to_string();
            }
            let name = block
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            let file = image
                .data
                .get(name)
                .unwrap_or_else(|| panic!("{topic:?}: block in unknown file {name:?}"));
            assert!(
                block.block_start.is_multiple_of(BLOCK_BYTES),
                "a block off its slot"
            );
            let mut next_free = block.block_start;
            for (offset, payload) in block.entries() {
                let start = offset + HEADER_BYTES as u64;
                let end = start + payload.len() as u64;
                assert!(offset >= next_free, "{topic:?}: entries overlap or go back");
                assert!(
                    end <= file.len,
                    "{topic:?}: entry at {offset} past the file"
                );
                assert!(
                    file.read(start, payload.len()) == payload,
                    "{topic:?}: payload at {offset} is not the file's bytes"
                );
                let header = file.read(offset, HEADER_BYTES);
                let (size, _, sum) =
                    header_fields(&header).expect("a returned entry has a valid header");
                assert_eq!(
                    size,
                    payload.len() as u64,
                    "payload length not the header's"
                );
                assert_eq!(sum, fnv1a64(payload), "returned entry fails its checksum");
                next_free = end;
                entries_total += 1;
            }
            assert_eq!(block.len(), block.entries().len());
            assert_eq!(
                block.payload_bytes(),
                block.entries().map(|(_, p)| p.len() as u64).sum::<u64>()
            );
        }
        if start.offset > 0 {
            assert!(
                blocks > 0,
                "{topic:?}: a start inside a block it never read"
            );
        }
    }
    assert!(
        entries_total <= bytes / HEADER_BYTES as u64,
        "more entries than headers fit"
    );
    clear(dir);
}
