//! Counters published through the `metrics` facade when the `metrics` feature is on; without
//! it these functions compile to nothing.
//!
//! Names: `walrus_appends_total`, `walrus_appended_bytes_total`, `walrus_reads_total`,
//! `walrus_fsyncs_total`, `walrus_cursor_persists_total`, `walrus_corrupt_entries_total`.

#[cfg(feature = "metrics")]
mod enabled {
    pub(crate) fn appended(entries: u64, bytes: u64) {
        metrics::counter!("walrus_appends_total").increment(entries);
        metrics::counter!("walrus_appended_bytes_total").increment(bytes);
    }

    pub(crate) fn read(entries: u64) {
        metrics::counter!("walrus_reads_total").increment(entries);
    }

    pub(crate) fn fsync() {
        metrics::counter!("walrus_fsyncs_total").increment(1);
    }

    pub(crate) fn cursor_persist() {
        metrics::counter!("walrus_cursor_persists_total").increment(1);
    }

    pub(crate) fn corrupt(entries: u64) {
        metrics::counter!("walrus_corrupt_entries_total").increment(entries);
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    pub(crate) fn appended(_entries: u64, _bytes: u64) {}
    pub(crate) fn read(_entries: u64) {}
    pub(crate) fn fsync() {}
    pub(crate) fn cursor_persist() {}
    pub(crate) fn corrupt(_entries: u64) {}
}

pub(crate) use enabled::{appended, corrupt, cursor_persist, fsync, read};
