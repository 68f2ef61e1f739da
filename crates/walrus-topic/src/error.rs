//! The topic layer's one error type, and its conversion to the `io::Error` of the public API.

use std::io;

/// Result with the topic [`Error`] as default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the topic layer can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage below failed.
    #[error(transparent)]
    Storage(#[from] walrus_storage::Error),
    /// The allocator failed.
    #[error(transparent)]
    Alloc(#[from] walrus_alloc::Error),
    /// An argument broke a documented limit; the message names it.
    #[error("{0}")]
    InvalidInput(String),
    /// The call would have to wait for a batch on the same topic (walrus-rust 0.2.0 semantics;
    /// the builder's `wait_for_batches` makes such calls wait instead).
    #[error("{0}")]
    WouldBlock(&'static str),
    /// An earlier fsync failed: nothing written since is known to be durable, so the instance
    /// refuses writes until it is reopened.
    #[error("instance poisoned by an earlier fsync failure ({0}); reopen to recover")]
    Poisoned(String),
    /// Another process has the directory open.
    #[error("{0}")]
    Locked(walrus_storage::Error),
    /// A cursor write failed and undoing it failed too: the cursor file may hold a position
    /// past entries no read delivered, so the instance is poisoned.
    #[error("cursor write failed ({0}) and could not be undone ({1})")]
    CursorUndoFailed(walrus_storage::Error, walrus_storage::Error),
    /// A topic record write failed and undoing it failed too: the record file may hold the
    /// new record although the call failed.
    #[error("topic record write failed ({0}) and could not be undone ({1})")]
    RecordUndoFailed(walrus_storage::Error, walrus_storage::Error),
    /// The instance was opened read-only.
    #[error("instance opened read-only: {0} refused")]
    ReadOnly(&'static str),
    /// The directory holds walrus-rust 0.2.0 files and the import was turned off.
    #[error(
        "{} holds walrus-rust 0.2.0 data ({}) that is not imported: open it with the import \
         enabled (the default; `WalrusBuilder::import_v020(true)`) or run \
         `walrus-ctl migrate --dir {}` first",
        dir.display(), files.join(", "), dir.display()
    )]
    LegacyNotImported {
        /// The directory.
        dir: std::path::PathBuf,
        /// The 0.2.0 files in it.
        files: Vec<String>,
    },
    /// The journal of an interrupted 0.2.0 import cannot be read.
    #[error("import journal {} is damaged: {reason}", path.display())]
    BadImportJournal {
        /// The journal file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading walrus-rust 0.2.0 files failed.
    #[error(transparent)]
    Legacy(#[from] walrus_v020::Error),
    /// The topic's next sequence number (which recovery takes from the data and the persisted
    /// cursor) leaves no room for the entries to append: only a damaged or forged cursor or
    /// block header gets there.
    #[error("topic {0:?} has used up its sequence numbers")]
    SequenceExhausted(String),
    /// A position inside a topic's readable range has no valid entry: damaged data, which
    /// positional reads report instead of skipping.
    #[error("entry {seq} of topic {topic:?} is damaged or missing (block in {file})")]
    MissingEntry {
        /// The topic.
        topic: String,
        /// The position.
        seq: u64,
        /// The segment file of the block that should hold it.
        file: String,
    },
    /// The instance was closed before a position an `on_durable` callback waited for was
    /// durable (under `NoFsync`, nothing syncs unless asked to).
    #[error("instance closed before the position was made durable")]
    ClosedBeforeDurable,
}

impl Error {
    /// Whether this is a failed sync in the layers below, or a write whose effect on disk is
    /// unknown and could not be undone (either poisons the instance).
    pub fn is_sync_failure(&self) -> bool {
        match self {
            Self::Storage(err) => err.is_sync_failure(),
            Self::Alloc(err) => err.is_sync_failure(),
            Self::CursorUndoFailed(..) | Self::RecordUndoFailed(..) => true,
            _ => false,
        }
    }

    /// The [`io::ErrorKind`] that best describes this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Storage(err)
            | Self::Locked(err)
            | Self::CursorUndoFailed(err, _)
            | Self::RecordUndoFailed(err, _) => err.kind(),
            Self::Alloc(err) => err.kind(),
            Self::InvalidInput(_) => io::ErrorKind::InvalidInput,
            Self::WouldBlock(_) => io::ErrorKind::WouldBlock,
            Self::Poisoned(_) => io::ErrorKind::Other,
            Self::ReadOnly(_) => io::ErrorKind::PermissionDenied,
            Self::SequenceExhausted(_) | Self::MissingEntry { .. } => io::ErrorKind::InvalidData,
            Self::ClosedBeforeDurable => io::ErrorKind::Other,
            Self::LegacyNotImported { .. } | Self::BadImportJournal { .. } => {
                io::ErrorKind::InvalidData
            }
            Self::Legacy(err) => err.source.kind(),
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Storage(inner) => inner.into(),
            Error::Alloc(inner) => inner.into(),
            other => io::Error::new(other.kind(), other),
        }
    }
}
