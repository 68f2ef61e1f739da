//! Space reservation for pre-sized files, and (for tests only) the `FS_IOC_SHUTDOWN` power cut.

use std::{fs::File, io, os::unix::fs::FileExt};

/// Reserves `len` bytes for `file` so later writes inside them cannot fail for lack of space
/// (and a mapping of them cannot SIGBUS). Uses `fallocate` where the file system has it and
/// falls back to writing zeros.
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    match fallocate(file, len) {
        Ok(()) => Ok(()),
        Err(err) if is_unsupported(&err) => write_zeros(file, len),
        Err(err) => Err(err),
    }
}

fn is_unsupported(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS))
}

#[cfg(target_os = "linux")]
fn fallocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file length too large"))?;
    loop {
        // SAFETY: the descriptor is open for the lifetime of `file`, and fallocate takes no
        // pointers, so no memory is at stake.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Starts write-back of every dirty page of `file` and returns without waiting for it
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`; nothing elsewhere).
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the lifetime of `file`, and sync_file_range takes no
    // pointers, so no memory is at stake.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Gives the calling thread the lowest priority (nice 19) for clean-up work that should
/// yield to the threads doing the real work but never starve (`SCHED_IDLE` could, and the
/// space of a deleted file comes back only when its last handle closes). Best effort.
#[cfg(target_os = "linux")]
pub(crate) fn lower_thread_priority() {
    // SAFETY: gettid and setpriority take no pointers; on Linux, PRIO_PROCESS with a thread
    // id sets that thread's nice value only. A failure leaves the priority as it was.
    let _ = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
    };
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_thread_priority() {}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn fallocate(_file: &File, _len: u64) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
}

fn write_zeros(file: &File, len: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK as usize];
    let mut offset = 0;
    while offset < len {
        let n = CHUNK.min(len - offset);
        file.write_all_at(&zeros[..n as usize], offset)?;
        offset += n;
    }
    Ok(())
}

/// `FS_IOC_SHUTDOWN` (`_IOR('X', 125, __u32)` in `linux/fs.h`).
#[cfg(all(target_os = "linux", any(test, feature = "testing")))]
const FS_IOC_SHUTDOWN: u32 = 0x8004_587D;

/// `FS_GOING_DOWN_NOLOGFLUSH`: stop at once, without flushing the journal, as a power cut
/// would.
#[cfg(all(target_os = "linux", any(test, feature = "testing")))]
const FS_GOING_DOWN_NOLOGFLUSH: u32 = 2;

/// Shuts down the file system that `dir` (an open directory) lives on: every later
/// operation on it fails with `EIO`, and what its journal had not committed is lost.
#[cfg(all(target_os = "linux", any(test, feature = "testing")))]
pub(crate) fn shutdown_filesystem(dir: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut flags: u32 = FS_GOING_DOWN_NOLOGFLUSH;
    // SAFETY: the descriptor is open for the lifetime of `dir`; FS_IOC_SHUTDOWN reads one
    // `u32` through the pointer, which points at a live, aligned local for the whole call.
    let rc = unsafe {
        libc::ioctl(
            dir.as_raw_fd(),
            FS_IOC_SHUTDOWN as _,
            std::ptr::from_mut(&mut flags),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
