//! Preparing new blocks off the hot path. On the mmap backend an append is a copy into the
//! mapping, and the first write to each page of a fresh block takes a page fault that
//! allocates and zero-fills a page-cache page: profiles put three quarters of an append's
//! time there. When the writer starts a block, this thread asks the storage to fault the
//! block's pages in (`Segment::prepare_write`), front to back in 1 MiB steps, so it stays
//! ahead of the writer and the writer's copies land in mapped pages. It changes no byte, so
//! it needs no coordination with the writer; backends that need nothing are never asked.

use std::{
    sync::{Arc, mpsc},
    thread::JoinHandle,
};

use parking_lot::Mutex;
use walrus_storage::Segment;

/// How much of a block one request to the storage covers.
const STEP_BYTES: u64 = 1 << 20;

struct Job {
    segment: Arc<dyn Segment>,
    offset: u64,
    len: u64,
}

/// The preparing thread, started on the first request (none for backends that need none).
#[derive(Debug)]
pub(crate) struct Preparer {
    enabled: bool,
    worker: Mutex<Option<(mpsc::Sender<Job>, JoinHandle<()>)>>,
}

impl Preparer {
    /// A preparer that acts only if `enabled` (the mmap backend).
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            worker: Mutex::new(None),
        }
    }

    /// Asks for `len` bytes of `segment` from `offset` (a block just started) to be prepared.
    pub(crate) fn request(&self, segment: &Arc<dyn Segment>, offset: u64, len: u64) {
        if !self.enabled {
            return;
        }
        let job = Job {
            segment: Arc::clone(segment),
            offset,
            len,
        };
        let mut worker = self.worker.lock();
        if worker.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("walrus-prepare".into())
                .spawn(move || {
                    for job in rx {
                        let end = job.offset + job.len;
                        let mut at = job.offset;
                        while at < end {
                            let step = STEP_BYTES.min(end - at);
                            job.segment.prepare_write(at, step);
                            at += step;
                        }
                    }
                });
            match spawned {
                Ok(handle) => *worker = Some((tx, handle)),
                // Only a speed-up: without the thread, appends take their page faults.
                Err(err) => {
                    tracing::debug!(error = %err, "no block-preparing thread");
                    return;
                }
            }
        }
        if let Some((tx, _)) = worker.as_ref() {
            let _ = tx.send(job);
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.worker.lock().take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}
