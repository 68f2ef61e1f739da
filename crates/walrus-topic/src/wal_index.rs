//! `WalIndex`: the small persistent map of named positions that walrus-rust 0.2.0 exposes.
//!
//! Each change rewrites the whole (small) map to a temporary file, syncs it, renames it over
//! the real file and syncs the directory, so a crash leaves either the old or the new map.
//! This is the one place above walrus-storage that touches files directly: a user-facing
//! compatibility utility outside the log's data path.

use std::{
    collections::HashMap,
    fs,
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
};

use walrus_storage::{DEFAULT_FILE_MODE, Decoded, FrameHeader, decode_frame, encode_frame};

use crate::format::{
    INDEX_BLOCK_IDX_OFFSET, INDEX_BLOCK_OFFSET_OFFSET, INDEX_ENTRY_KIND, INDEX_FIXED_BYTES, u64_at,
};

/// A stored position: a block index and an offset in it (walrus-rust 0.2.0's `BlockPos`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockPos {
    /// Block index.
    pub cur_block_idx: u64,
    /// Offset in the block.
    pub cur_block_offset: u64,
}

/// A persistent map from names to [`BlockPos`], stored in `<namespace dir>/<name>_index.db`.
#[derive(Debug)]
pub struct WalIndex {
    map: HashMap<String, BlockPos>,
    path: PathBuf,
}

impl WalIndex {
    /// Opens (or creates) the index `file_name` in the instance directory that `Walrus::new()`
    /// would use. A damaged file loads as far as its records are valid. The file and any
    /// directory created for it are owner-only (`0o600`, `0o700`).
    pub fn new(file_name: &str) -> io::Result<Self> {
        let dir = crate::namespace::default_root();
        walrus_storage::create_dir_all(&dir, DEFAULT_FILE_MODE)?;
        let path = dir.join(format!("{file_name}_index.db"));
        let mut map = HashMap::new();
        match fs::read(&path) {
            Ok(bytes) if is_v020_index(&bytes) => {
                // walrus-rust 0.2.0 wrote this file: keep the original beside the imported
                // data, then store the map in our format.
                if let Ok(entries) = walrus_v020::decode_index(&bytes) {
                    let legacy = dir.join(crate::format::LEGACY_DIR_NAME);
                    walrus_storage::create_dir_all(&legacy, DEFAULT_FILE_MODE)?;
                    let copy = legacy.join(format!("{file_name}_index.db"));
                    if !copy.exists() {
                        fs::copy(&path, &copy)?;
                        fs::File::open(&legacy)?.sync_all()?;
                    }
                    map.extend(entries.into_iter().map(|(key, pos)| {
                        let pos = BlockPos {
                            cur_block_idx: pos.cur_block_idx,
                            cur_block_offset: pos.cur_block_offset,
                        };
                        (key, pos)
                    }));
                    let index = Self { map, path };
                    index.persist()?;
                    return Ok(index);
                }
            }
            Ok(bytes) => {
                let mut at = 0;
                while let Decoded::Frame(frame) = decode_frame(&bytes[at..]) {
                    let p = frame.payload;
                    if frame.header.kind == INDEX_ENTRY_KIND && p.len() >= INDEX_FIXED_BYTES {
                        let key = String::from_utf8_lossy(&p[INDEX_FIXED_BYTES..]).into_owned();
                        map.insert(
                            key,
                            BlockPos {
                                cur_block_idx: u64_at(p, INDEX_BLOCK_IDX_OFFSET),
                                cur_block_offset: u64_at(p, INDEX_BLOCK_OFFSET_OFFSET),
                            },
                        );
                    }
                    at += frame.frame_len;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        Ok(Self { map, path })
    }

    /// Sets `key` and persists the map.
    pub fn set(&mut self, key: String, idx: u64, offset: u64) -> io::Result<()> {
        self.map.insert(
            key,
            BlockPos {
                cur_block_idx: idx,
                cur_block_offset: offset,
            },
        );
        self.persist()
    }

    /// The position stored under `key`.
    pub fn get(&self, key: &str) -> Option<&BlockPos> {
        self.map.get(key)
    }

    /// Removes `key`, persisting the map if it was there.
    pub fn remove(&mut self, key: &str) -> io::Result<Option<BlockPos>> {
        let removed = self.map.remove(key);
        if removed.is_some() {
            self.persist()?;
        }
        Ok(removed)
    }

    fn persist(&self) -> io::Result<()> {
        let mut bytes = Vec::new();
        for (key, pos) in &self.map {
            let mut payload = vec![0u8; INDEX_FIXED_BYTES];
            for (at, value) in [
                (INDEX_BLOCK_IDX_OFFSET, pos.cur_block_idx),
                (INDEX_BLOCK_OFFSET_OFFSET, pos.cur_block_offset),
            ] {
                payload[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            payload.extend_from_slice(key.as_bytes());
            encode_frame(
                &mut bytes,
                &FrameHeader {
                    kind: INDEX_ENTRY_KIND,
                    ..Default::default()
                },
                &payload,
            );
        }
        let tmp = self.path.with_extension("db.tmp");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(DEFAULT_FILE_MODE)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Whether `bytes` are not ours (which start with a frame) but decode as walrus-rust 0.2.0's
/// rkyv archive of the map.
fn is_v020_index(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && !matches!(decode_frame(bytes), Decoded::Frame(_))
        && walrus_v020::decode_index(bytes).is_ok()
}
