//! `AtLeastOnce` cursor persists that the next group-commit round makes durable.
//!
//! Under `Milliseconds(n)`, a cursor persist writes its slot at once (so it survives a
//! process crash) but does not sync the cursor file itself: the next sync round does, as it
//! does for the data. A reader then never waits for a device flush; when reads consume whole
//! files, their cursor fdatasyncs also queued behind the discards of the deleted files, and
//! four readers of 1 GiB spent up to a third of the read waiting (`EngineConfig::cursor_sync`).
//!
//! What stays true: the blocks a written cursor has left behind are consumed (and their files
//! deleted) only after a round has made that cursor durable, so a power loss can never bring
//! back a cursor that points into deleted data; and a write never goes to the half of a slot
//! that holds the newest durable generation (`TopicReader::half_for_write`), so a torn or lost
//! write falls back to a cursor that was durable.

use std::sync::Arc;

use parking_lot::Mutex;
use walrus_storage::Segment;

use crate::block::Block;

/// Cursor files written since the last round, and blocks waiting for a round to consume them.
#[derive(Debug, Default)]
pub(crate) struct DeferredCursors {
    /// Cursor files with writes no round has synced yet.
    files: Mutex<Vec<Arc<dyn Segment>>>,
    /// Blocks behind a cursor written with ticket `.0`: consumed once that ticket is durable.
    behind: Mutex<Vec<(u64, Arc<Block>)>>,
}

impl DeferredCursors {
    /// Notes that `file` holds a cursor write the next round must sync. Called before the
    /// write takes its ticket, so a round whose target covers that ticket finds the file.
    pub(crate) fn written(&self, file: Arc<dyn Segment>) {
        let mut files = self.files.lock();
        if !files.iter().any(|f| Arc::ptr_eq(f, &file)) {
            files.push(file);
        }
    }

    /// Syncs every cursor file written before this call. A round calls it after choosing its
    /// target, so every cursor write with a ticket up to the target is covered. On failure the
    /// files stay listed (the caller poisons the instance).
    pub(crate) fn sync_written(&self) -> walrus_storage::Result<()> {
        let files = std::mem::take(&mut *self.files.lock());
        for (i, file) in files.iter().enumerate() {
            // Mutant deferred_cursor_unsynced: a round never syncs the cursor files.
            if cfg!(walrus_mutant = "deferred_cursor_unsynced") {
                break;
            }
            if let Err(err) = file.sync() {
                for file in &files[i..] {
                    self.written(Arc::clone(file));
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Queues `blocks` to be consumed once every ticket up to `ticket` is durable.
    pub(crate) fn consume_after(&self, ticket: u64, blocks: Vec<Arc<Block>>) {
        let mut behind = self.behind.lock();
        behind.extend(blocks.into_iter().map(|b| (ticket, b)));
    }

    /// Consumes the queued blocks whose cursor is durable now that tickets up to `durable`
    /// are. Files may be deleted here.
    pub(crate) fn consume_due(&self, durable: u64) {
        let due: Vec<Arc<Block>> = {
            let mut behind = self.behind.lock();
            if behind.is_empty() {
                return;
            }
            let (due, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut *behind)
                .into_iter()
                .partition(|(ticket, _)| *ticket <= durable);
            *behind = wait;
            due.into_iter().map(|(_, block)| block).collect()
        };
        for block in due {
            block.extent.consume();
        }
    }
}
