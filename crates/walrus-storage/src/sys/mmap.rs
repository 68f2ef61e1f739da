//! A shared, writable mapping of a whole file, accessed only through copies.
//!
//! Mapped memory can change under us (other processes, the kernel), so no reference to it is
//! ever created: bytes move in and out with `copy_nonoverlapping` on raw pointers.

use std::{fs::File, io};

use memmap2::{MmapOptions, MmapRaw};

#[derive(Debug)]
pub(crate) struct Mapping {
    raw: Option<MmapRaw>,
}

impl Mapping {
    pub(crate) fn map(file: &File, len: u64) -> io::Result<Self> {
        if len == 0 {
            return Ok(Self { raw: None });
        }
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        Ok(Self {
            raw: Some(MmapOptions::new().len(len).map_raw(file)?),
        })
    }

    fn range_ptr(&self, offset: usize, len: usize) -> *mut u8 {
        let raw = self.raw.as_ref().filter(|_| len > 0);
        match raw {
            Some(raw) => {
                assert!(offset.checked_add(len).is_some_and(|end| end <= raw.len()));
                // SAFETY: the assert above keeps `offset` inside the mapping, which is one
                // allocation of `raw.len()` bytes, so the pointer stays in bounds.
                unsafe { raw.as_mut_ptr().add(offset) }
            }
            None => std::ptr::NonNull::dangling().as_ptr(),
        }
    }

    /// Copies `buf` into the mapping at `offset`. Panics if the range is outside the mapping;
    /// callers check bounds first and return an error instead.
    pub(crate) fn write(&self, offset: usize, buf: &[u8]) {
        let dst = self.range_ptr(offset, buf.len());
        // SAFETY: `range_ptr` checked that `buf.len()` bytes from `dst` lie inside the live
        // mapping (or that the copy is empty); `buf` is a separate Rust allocation, so the
        // ranges cannot overlap. The mapping outlives this call because `self` borrows it.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) }
    }

    /// Copies bytes at `offset` out of the mapping into `buf`. Panics like [`Mapping::write`].
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) {
        let src = self.range_ptr(offset, buf.len());
        // SAFETY: as in `write`: the source range is inside the live mapping, the destination
        // is a distinct Rust allocation of exactly `buf.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) }
    }

    /// `msync(MS_SYNC)` of a byte range (widened to whole pages by memmap2).
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        match &self.raw {
            Some(raw) if len > 0 => raw.flush_range(offset, len),
            _ => Ok(()),
        }
    }
}
