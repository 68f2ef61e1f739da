//! Space reservation for pre-sized files.

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
