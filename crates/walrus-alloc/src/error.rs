//! The allocator's one error type.

use std::{io, path::PathBuf};

/// Result with the allocator [`Error`] as default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while allocating blocks or adopting files from an earlier run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage below failed.
    #[error(transparent)]
    Storage(#[from] walrus_storage::Error),
    /// A segment file's header is missing, damaged or from an unknown format version.
    #[error("segment file {path} has a bad header: {reason}")]
    BadFileHeader {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment file that holds nothing but zeros: a crash interrupted its creation (a file
    /// is used only once its header is durable), so it never held data and may be removed.
    #[error("segment file {path} was never finished (all zeros)")]
    UnfinishedFile {
        /// The file concerned.
        path: PathBuf,
    },
    /// An allocation request was zero bytes or too large for any file.
    #[error("cannot allocate {bytes} bytes: {reason}")]
    BadRequest {
        /// The requested size.
        bytes: u64,
        /// Why it cannot be served.
        reason: &'static str,
    },
}

impl Error {
    /// Whether this is a failed sync in the storage below.
    pub fn is_sync_failure(&self) -> bool {
        matches!(self, Self::Storage(err) if err.is_sync_failure())
    }

    /// The [`io::ErrorKind`] that best describes this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Storage(err) => err.kind(),
            Self::BadFileHeader { .. } | Self::UnfinishedFile { .. } => io::ErrorKind::InvalidData,
            Self::BadRequest { .. } => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Storage(inner) => inner.into(),
            other => io::Error::new(other.kind(), other),
        }
    }
}
