//! What recovery (and the 0.2.0 import) report: a [`Finding`] names the file, the offset and
//! what is wrong there.

use std::path::PathBuf;

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
