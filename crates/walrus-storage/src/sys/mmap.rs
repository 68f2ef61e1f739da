//! A shared, writable mapping of a whole file, accessed only through copies.
//!
//! Mapped memory can change under us (other processes, the kernel), so no reference to it is
//! ever created: bytes move in and out with `copy_nonoverlapping` on raw pointers.
//!
//! Unit tests can back a [`Mapping`] with heap memory instead of a file (`Mapping::fake`), so
//! that Miri, which cannot map files, checks the same pointer arithmetic and copies (docs:
//! shared RELIABILITY.md T10).

use std::{fs::File, io};

use memmap2::{MmapOptions, MmapRaw};

/// The memory behind a [`Mapping`].
#[derive(Debug)]
enum Backing {
    /// A shared mapping of a file.
    File(MmapRaw),
    /// Heap memory standing in for a mapping (tests). Atomic bytes, because the copies write
    /// through a pointer derived from a shared reference, which needs interior mutability,
    /// and because a `Mapping` must stay `Sync`.
    #[cfg(test)]
    Fake(Box<[std::sync::atomic::AtomicU8]>),
}

impl Backing {
    /// The first byte and the length in bytes.
    fn base_and_len(&self) -> (*mut u8, usize) {
        match self {
            Self::File(raw) => (raw.as_mut_ptr(), raw.len()),
            // `AtomicU8` has the size and alignment of `u8`.
            #[cfg(test)]
            Self::Fake(bytes) => (bytes.as_ptr().cast_mut().cast::<u8>(), bytes.len()),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Mapping {
    raw: Option<Backing>,
}

impl Mapping {
    pub(crate) fn map(file: &File, len: u64) -> io::Result<Self> {
        if len == 0 {
            return Ok(Self { raw: None });
        }
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        Ok(Self {
            raw: Some(Backing::File(MmapOptions::new().len(len).map_raw(file)?)),
        })
    }

    /// A zeroed stand-in of `len` bytes in heap memory, for tests under Miri.
    #[cfg(test)]
    pub(crate) fn fake(len: usize) -> Self {
        let bytes = (0..len)
            .map(|_| std::sync::atomic::AtomicU8::new(0))
            .collect();
        Self {
            raw: (len > 0).then_some(Backing::Fake(bytes)),
        }
    }

    fn range_ptr(&self, offset: usize, len: usize) -> *mut u8 {
        let raw = self.raw.as_ref().filter(|_| len > 0);
        match raw {
            Some(raw) => {
                let (base, map_len) = raw.base_and_len();
                assert!(offset.checked_add(len).is_some_and(|end| end <= map_len));
                // SAFETY: the assert above keeps `offset` inside the mapping, which is one
                // allocation of `map_len` bytes, so the pointer stays in bounds.
                unsafe { base.add(offset) }
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

    /// Appends the `len` bytes at `offset` in the mapping to `out`, copied straight into its
    /// spare capacity (no zero-filling first, which cost a tenth of an mmap batch read in
    /// `calloc`). Panics like [`Mapping::write`].
    pub(crate) fn read_append(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        let src = self.range_ptr(offset, len);
        out.reserve(len);
        let filled = out.len();
        // SAFETY: `range_ptr` checked that `len` bytes from `src` lie inside the live mapping
        // (or that the copy is empty); `reserve` made room for `len` more bytes after the
        // initialized `filled`, in a Rust allocation distinct from the mapping, so the ranges
        // cannot overlap. Those `len` bytes are initialized by the copy before `set_len`
        // exposes them.
        unsafe {
            std::ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(filled), len);
            out.set_len(filled + len);
        }
    }

    /// Faults the pages of a byte range in, writable, without touching their bytes
    /// (`MADV_POPULATE_WRITE`, Linux 5.14+): a later write to them costs no page fault.
    /// Only a hint: kernels without it return an error, which callers ignore.
    pub(crate) fn prefault(&self, offset: usize, len: usize) -> io::Result<()> {
        match &self.raw {
            #[cfg(target_os = "linux")]
            Some(Backing::File(raw)) if len > 0 => {
                raw.advise_range(memmap2::Advice::PopulateWrite, offset, len)
            }
            _ => Ok(()),
        }
    }

    /// `msync(MS_SYNC)` of a byte range (widened to whole pages by memmap2).
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        match &self.raw {
            Some(Backing::File(raw)) if len > 0 => raw.flush_range(offset, len),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
