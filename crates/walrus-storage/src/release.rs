//! Letting go of a deleted file's handle off the caller's thread.

use std::sync::Arc;

use crate::Segment;

/// Drops `segment` (usually the last handle of a file already unlinked) on a short-lived
/// thread of the lowest priority (nice 19), and returns at once.
///
/// Closing the last handle of an unlinked file frees its cached pages and its space: tens of
/// milliseconds of CPU for a file of a few hundred MiB. A reader whose cursor passed a
/// file's last extent would otherwise pay that inline; at the lowest priority it mostly waits
/// for a core with nothing better to do, but is never starved, so the space comes back
/// (batch reads of 1 GiB over 4 topics on 2 cores ran at about half speed while it competed
/// with them at normal priority). Where no thread can be spawned, the handle is dropped here.
pub fn release_in_background(segment: Arc<dyn Segment>) {
    let spawned = std::thread::Builder::new()
        .name("walrus-release".into())
        .spawn(move || {
            crate::sys::fs::lower_thread_priority();
            drop(segment);
        });
    if let Err(err) = spawned {
        tracing::debug!(error = %err, "cannot spawn a thread to close a deleted file");
    }
}
