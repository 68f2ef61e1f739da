//! A topic: one writer, one chain of blocks, one shared read cursor.

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::AtomicBool},
};

use parking_lot::{Mutex, RwLock};
use walrus_storage::Segment;

use crate::{block::Block, claim::ClaimTracker};

#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) writer: Mutex<WriterState>,
    /// Set while a batch append holds the writer (walrus-rust 0.2.0's fail-fast flag).
    pub(crate) batch_active: AtomicBool,
    /// Blocks from the reader's current one to the writer's active one, in order.
    pub(crate) chain: RwLock<VecDeque<Arc<Block>>>,
    pub(crate) reader: Mutex<ReaderState>,
}

#[derive(Debug)]
pub(crate) struct WriterState {
    /// The block being appended to, with its file handle cached for the hot path.
    pub(crate) active: Option<(Arc<Block>, Arc<dyn Segment>)>,
    /// Offset in the active extent where the next frame goes.
    pub(crate) write_offset: u64,
    /// Sequence number of the next entry.
    pub(crate) next_seq: u64,
    /// Reused encoding buffer, so appends do not allocate.
    pub(crate) scratch: Vec<u8>,
    /// What is known durable, for the claim each entry carries.
    pub(crate) claims: ClaimTracker,
}

#[derive(Debug, Default)]
pub(crate) struct ReaderState {
    /// Offset in the chain's front block of the next frame to read.
    pub(crate) offset: u64,
    /// Sequence number of the next entry to deliver.
    pub(crate) next_seq: u64,
    /// Checkpointed entries since the cursor was last persisted.
    pub(crate) unpersisted: u64,
    /// The persisted cursor's slot and generation, once it has one.
    pub(crate) slot: Option<u32>,
    pub(crate) generation: u64,
    /// The sequence number last persisted, if any.
    pub(crate) persisted_seq: Option<u64>,
    /// The last damaged offset reported, so a repeated peek logs it once.
    pub(crate) last_corruption: Option<(u64, u64)>,
    /// Blocks the cursor has passed, with the sequence number just after each. A block is
    /// consumed (and its file may go) only once a *persisted* cursor is past it, so a crash
    /// can never rewind the cursor onto deleted data.
    pub(crate) passed: Vec<(Arc<Block>, u64)>,
    /// Reused read buffer of batch reads.
    pub(crate) scratch: Vec<u8>,
}

impl ReaderState {
    /// Consumes the passed blocks that the persisted cursor has left behind.
    pub(crate) fn release_passed(&mut self) {
        let persisted = self.persisted_seq.unwrap_or(0);
        self.passed.retain(|(block, end_seq)| {
            let keep = *end_seq > persisted;
            if !keep {
                block.extent.consume();
            }
            keep
        });
    }
}

impl Topic {
    pub(crate) fn new(
        name: String,
        next_seq: u64,
        chain: VecDeque<Arc<Block>>,
        reader: ReaderState,
    ) -> Self {
        Self {
            name,
            writer: Mutex::new(WriterState {
                active: None,
                write_offset: 0,
                next_seq,
                scratch: Vec::new(),
                // A new topic has nothing before 0; a recovered one was synced at open.
                claims: ClaimTracker::new(next_seq),
            }),
            batch_active: AtomicBool::new(false),
            chain: RwLock::new(chain),
            reader: Mutex::new(reader),
        }
    }

    pub(crate) fn block_at(&self, index: usize) -> Option<Arc<Block>> {
        self.chain.read().get(index).cloned()
    }

    /// Moves the first `count` blocks of the chain to the reader's passed list; `next_seq` is
    /// the sequence number after the last of them when no block follows.
    pub(crate) fn pass_blocks(&self, reader: &mut ReaderState, count: usize, next_seq: u64) {
        if count == 0 {
            return;
        }
        let mut chain = self.chain.write();
        for _ in 0..count {
            let Some(block) = chain.pop_front() else {
                break;
            };
            let end_seq = chain.front().map_or(next_seq, |b| b.first_seq);
            reader.passed.push((block, end_seq));
        }
    }
}
