//! The per-file counters that decide, without locks or a coordinator, when a file is deleted.
//!
//! All counters live in one `u64` so that every transition is a single compare-and-swap: the
//! transition that makes the file deletable also sets the `deleted` bit in the same swap, so
//! exactly one caller ever learns "delete it now".

use crate::sync::{AtomicU64, Ordering};

const FIELD_BITS: u32 = 20;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;
const ALLOCATED_SHIFT: u32 = 0;
const WRITING_SHIFT: u32 = FIELD_BITS;
const CONSUMED_SHIFT: u32 = 2 * FIELD_BITS;
const FULL_BIT: u64 = 1 << (3 * FIELD_BITS);
const DELETED_BIT: u64 = FULL_BIT << 1;

/// Largest number of extents one file can hold (the counters are 20 bits wide).
pub(crate) const EXTENTS_PER_FILE_MAX: u32 = FIELD_MASK as u32;

/// A snapshot of a file's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCounts {
    /// Extents handed out (or adopted at recovery).
    pub allocated: u32,
    /// Extents a writer still appends to.
    pub writing: u32,
    /// Extents their topic's reader has passed.
    pub consumed: u32,
    /// Whether the allocator will hand out no more extents from this file.
    pub fully_allocated: bool,
    /// Whether the file has been claimed for deletion.
    pub deleted: bool,
}

impl FileCounts {
    fn unpack(word: u64) -> Self {
        // Each field is masked to 20 bits, so the casts are lossless.
        Self {
            allocated: ((word >> ALLOCATED_SHIFT) & FIELD_MASK) as u32,
            writing: ((word >> WRITING_SHIFT) & FIELD_MASK) as u32,
            consumed: ((word >> CONSUMED_SHIFT) & FIELD_MASK) as u32,
            fully_allocated: word & FULL_BIT != 0,
            deleted: word & DELETED_BIT != 0,
        }
    }

    fn pack(self) -> u64 {
        (u64::from(self.allocated) << ALLOCATED_SHIFT)
            | (u64::from(self.writing) << WRITING_SHIFT)
            | (u64::from(self.consumed) << CONSUMED_SHIFT)
            | if self.fully_allocated { FULL_BIT } else { 0 }
            | if self.deleted { DELETED_BIT } else { 0 }
    }

    /// The deletion rule: nothing more will be allocated, nothing is being written, and every
    /// extent has been consumed.
    pub fn deletable(&self) -> bool {
        self.fully_allocated && self.writing == 0 && self.consumed == self.allocated
    }
}

/// What a transition asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Outcome {
    /// Nothing more to do.
    Done,
    /// This call made the file deletable and claimed it: the caller deletes it.
    Delete,
    /// The transition was not allowed (for example allocating from a full file).
    Refused,
}

#[derive(Debug, Default)]
pub(crate) struct FileState {
    word: AtomicU64,
}

impl FileState {
    pub(crate) fn counts(&self) -> FileCounts {
        // Acquire pairs with the AcqRel swaps in `update`: a snapshot sees every transition
        // before it.
        FileCounts::unpack(self.word.load(Ordering::Acquire))
    }

    /// Applies `change` atomically; `None` from `change` refuses the transition.
    fn update(&self, change: impl Fn(FileCounts) -> Option<FileCounts>) -> Outcome {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let before = FileCounts::unpack(current);
            let Some(mut after) = change(before) else {
                return Outcome::Refused;
            };
            let claim = !after.deleted && after.deletable();
            after.deleted |= claim;
            // AcqRel: the release half publishes this caller's writes and reads of the file
            // (a sealed extent's data, a consumed extent's reads) to whoever claims the
            // deletion; the acquire half lets the claimer see everyone else's.
            match self.word.compare_exchange_weak(
                current,
                after.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return if claim {
                        Outcome::Delete
                    } else {
                        Outcome::Done
                    };
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts a new extent that a writer is about to fill.
    pub(crate) fn allocate(&self) -> Outcome {
        self.update(|c| {
            (!c.fully_allocated && !c.deleted && c.allocated < EXTENTS_PER_FILE_MAX).then(|| {
                FileCounts {
                    allocated: c.allocated + 1,
                    writing: c.writing + 1,
                    ..c
                }
            })
        })
    }

    /// Counts an extent found at recovery: allocated and already sealed.
    pub(crate) fn adopt(&self) -> Outcome {
        self.update(|c| {
            (!c.fully_allocated && c.allocated < EXTENTS_PER_FILE_MAX).then(|| FileCounts {
                allocated: c.allocated + 1,
                ..c
            })
        })
    }

    /// An extent's writer is done with it.
    pub(crate) fn seal(&self) -> Outcome {
        self.update(|c| {
            (c.writing > 0).then(|| FileCounts {
                writing: c.writing - 1,
                ..c
            })
        })
    }

    /// An extent's reader has passed it.
    pub(crate) fn consume(&self) -> Outcome {
        self.update(|c| {
            (c.consumed < c.allocated).then(|| FileCounts {
                consumed: c.consumed + 1,
                ..c
            })
        })
    }

    /// The allocator will hand out nothing more from this file.
    pub(crate) fn mark_full(&self) -> Outcome {
        self.update(|c| {
            Some(FileCounts {
                fully_allocated: true,
                ..c
            })
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
