//! The publication word of a block: how far readers may read it, and whether the writer has
//! moved on. The whole read/write protocol between a topic's writer and its readers rests on
//! this one word, so it lives alone here, on the atomics of `sync.rs`, and its loom models
//! (`publish/loom_tests.rs`) check it with every interleaving.
//!
//! The writer fills the extent, then stores the new end with release ordering; a reader loads
//! it with acquire, so it never reads bytes before the write that put them there has returned.
//! End and sealed flag share the word, so a batch that ends one block and continues in the
//! next becomes visible with a single store: whole or not at all.

use crate::sync::{AtomicU64, Ordering};

const SEALED_BIT: u64 = 1 << 63;

#[derive(Debug)]
pub(crate) struct PublishedEnd(AtomicU64);

impl PublishedEnd {
    pub(crate) fn new(end: u64, sealed: bool) -> Self {
        Self(AtomicU64::new(end | if sealed { SEALED_BIT } else { 0 }))
    }

    /// `(sealed, end)`: readers may read frames up to `end`, and past the block once sealed.
    pub(crate) fn visible(&self) -> (bool, u64) {
        // Acquire pairs with the release stores below: the frames up to `end` are written.
        let word = self.0.load(Ordering::Acquire);
        (word & SEALED_BIT != 0, word & !SEALED_BIT)
    }

    /// Makes the frames up to `end` visible; the writer may append more.
    pub(crate) fn publish(&self, end: u64) {
        // Release pairs with the acquire load in `visible`.
        self.0.store(end, Ordering::Release);
    }

    /// Makes the frames up to `end` visible and final, in one store.
    pub(crate) fn publish_sealed(&self, end: u64) {
        // Release pairs with the acquire load in `visible`.
        self.0.store(end | SEALED_BIT, Ordering::Release);
    }

    /// Seals at the current end.
    pub(crate) fn seal(&self) {
        // Release pairs with `visible`; only the writer stores, so the end cannot change.
        self.0.fetch_or(SEALED_BIT, Ordering::Release);
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
