//! The journal of a 0.2.0 import in progress: which files it imports, where they go, and for
//! each topic the sequence number its first imported entry gets.
//!
//! One checksummed frame of kind `IMPORT_JOURNAL_KIND` whose payload is UTF-8 lines:
//! `walrus-import-0.2.0 1`, `dest <dir name>`, `file <name>` per file, and
//! `topic <first seq> <topic name as hex>` per topic. Written to a temporary file, synced,
//! renamed into place and the directory synced, so it is either wholly there or absent.

use std::{collections::BTreeMap, fmt::Write as _, fs, io::Write as _, path::Path};

use walrus_storage::{Decoded, FrameHeader, decode_frame, encode_frame};

use super::io_error;
use crate::{
    Error, Result,
    format::{IMPORT_JOURNAL_KIND, IMPORT_JOURNAL_NAME},
};

const FIRST_LINE: &str = "walrus-import-0.2.0 1";

/// An import in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Journal {
    /// Name of the directory (inside the instance directory) the legacy files go to.
    pub(crate) dest: String,
    /// The legacy files, by name.
    pub(crate) files: Vec<String>,
    /// Per topic, the sequence number of its first imported entry.
    pub(crate) bases: BTreeMap<String, u64>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadImportJournal {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Journal {
    /// The journal in `dir`, if an import is in progress there.
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(IMPORT_JOURNAL_NAME);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_error("read", &path, err)),
        };
        let frame = match decode_frame(&bytes) {
            Decoded::Frame(frame) if frame.header.kind == IMPORT_JOURNAL_KIND => frame,
            Decoded::Frame(_) => return Err(bad(&path, "not an import journal")),
            Decoded::Zeroed => return Err(bad(&path, "zeroed")),
            Decoded::Invalid(err) => return Err(bad(&path, err.to_string())),
        };
        let text = std::str::from_utf8(frame.payload).map_err(|_| bad(&path, "not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(FIRST_LINE) {
            return Err(bad(&path, "unknown version"));
        }
        let mut journal = Self {
            dest: String::new(),
            files: Vec::new(),
            bases: BTreeMap::new(),
        };
        for line in lines {
            let mut words = line.split(' ');
            match (words.next(), words.next(), words.next()) {
                (Some("dest"), Some(name), None) => journal.dest = name.to_owned(),
                (Some("file"), Some(name), None) => journal.files.push(name.to_owned()),
                (Some("topic"), Some(seq), Some(hex)) => {
                    let seq = seq.parse().map_err(|_| bad(&path, line))?;
                    let name = decode_hex(hex).ok_or_else(|| bad(&path, line))?;
                    journal.bases.insert(name, seq);
                }
                _ => return Err(bad(&path, format!("unexpected line {line:?}"))),
            }
        }
        if journal.dest.is_empty() || journal.dest.contains('/') {
            return Err(bad(&path, "no valid destination"));
        }
        Ok(Some(journal))
    }

    /// Writes the journal into `dir` durably, replacing any earlier one.
    pub(crate) fn store(&self, dir: &Path, mode: u32) -> Result<()> {
        let mut text = format!("{FIRST_LINE}\ndest {}\n", self.dest);
        for file in &self.files {
            let _ = writeln!(text, "file {file}");
        }
        for (topic, seq) in &self.bases {
            let hex: String = topic.bytes().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(text, "topic {seq} {hex}");
        }
        let mut bytes = Vec::new();
        let header = FrameHeader {
            kind: IMPORT_JOURNAL_KIND,
            ..Default::default()
        };
        encode_frame(&mut bytes, &header, text.as_bytes());
        let path = dir.join(IMPORT_JOURNAL_NAME);
        let tmp = dir.join(format!("{IMPORT_JOURNAL_NAME}.tmp"));
        let mut file = super::create_file(&tmp, mode).map_err(|e| io_error("create", &tmp, e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_error("rename", &tmp, e))?;
        super::sync_dir(dir)
    }

    /// Removes the journal of `dir` durably: the import is complete.
    pub(crate) fn remove(dir: &Path) -> Result<()> {
        let path = dir.join(IMPORT_JOURNAL_NAME);
        fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
        super::sync_dir(dir)
    }
}

fn decode_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), None);
        let journal = Journal {
            dest: "legacy-0.2.0".into(),
            files: vec!["1795313077482".into(), "read_offset_idx_index.db".into()],
            bases: BTreeMap::from([("orders".into(), 0), ("a b\n€".into(), 17)]),
        };
        journal.store(dir.path(), 0o600).unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), Some(journal));
        let path = dir.path().join(IMPORT_JOURNAL_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[walrus_storage::FRAME_HEADER_BYTES + 3] ^= 1; // inside the payload
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Journal::load(dir.path()),
            Err(Error::BadImportJournal { .. })
        ));
        Journal::remove(dir.path()).unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), None);
    }
}
