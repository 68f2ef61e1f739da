//! The storage layer's one error type.

use std::{io, path::PathBuf};

/// Result with the storage [`Error`] as default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong below the entry framing.
///
/// Every variant names the file it concerns, so a message that reaches a user says where to look.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused an operation.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation, for example `write` or `fdatasync`.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A read or write reached past the pre-sized length of a file.
    #[error(
        "access of {len} bytes at offset {offset} is past the end of {path} ({file_len} bytes)"
    )]
    OutOfBounds {
        /// The file concerned.
        path: PathBuf,
        /// Where the access started.
        offset: u64,
        /// How many bytes it covered.
        len: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The handle belongs to a generation of a test storage that a simulated power loss ended.
    #[error("{path} was invalidated by a simulated power loss")]
    Crashed {
        /// The file concerned.
        path: PathBuf,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether this is a failed `fsync`, `fdatasync` or `msync`: after one, the kernel may have
    /// dropped the dirty data it could not write, so callers must not retry into a success.
    pub fn is_sync_failure(&self) -> bool {
        matches!(self, Self::Io { op, .. } if op.contains("sync"))
    }

    /// The [`io::ErrorKind`] that best describes this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Io { source, .. } => source.kind(),
            Self::OutOfBounds { .. } => io::ErrorKind::UnexpectedEof,
            Self::Crashed { .. } => io::ErrorKind::BrokenPipe,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        io::Error::new(err.kind(), err)
    }
}
