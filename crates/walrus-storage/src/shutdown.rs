//! A real-kernel power cut for tests (T4 of the reliability plan): shut a mounted file
//! system down with `FS_IOC_SHUTDOWN` and `NOLOGFLUSH`, so tests that must not use `unsafe`
//! can cut the power under a running log. Only built with the `testing` feature.

use std::{fs::File, io, os::unix::fs::MetadataExt, path::Path};

/// Shuts down the file system mounted at `mount_point` as a power cut would: the journal
/// is not flushed, so only what was fsynced (or msynced) before the call survives the next
/// mount, and every later operation on the file system fails with `EIO` until it is
/// unmounted. Needs root (`CAP_SYS_ADMIN`) and a file system that supports the ioctl
/// (ext4, XFS, F2FS, btrfs); Linux only.
///
/// Refuses (`InvalidInput`) a path that is not the root of a mount, i.e. whose device is
/// that of its parent directory, so that a wrong path cannot take down the file system the
/// caller itself runs on.
pub fn shutdown_filesystem(mount_point: &Path) -> io::Result<()> {
    let dir = File::open(mount_point)?;
    let parent = mount_point.join("..");
    let own = dir.metadata()?;
    let above = std::fs::metadata(&parent)?;
    if !own.is_dir() || own.dev() == above.dev() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not the root of a mounted file system; refusing to shut it down",
                mount_point.display()
            ),
        ));
    }
    shutdown(&dir)
}

#[cfg(target_os = "linux")]
fn shutdown(dir: &File) -> io::Result<()> {
    crate::sys::fs::shutdown_filesystem(dir)
}

#[cfg(not(target_os = "linux"))]
fn shutdown(_dir: &File) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "FS_IOC_SHUTDOWN exists on Linux only",
    ))
}
