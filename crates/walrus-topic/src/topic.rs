//! A topic: one writer (`append.rs`), one chain of blocks, one shared reader (`reader.rs`).

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::AtomicBool},
};

use parking_lot::{Mutex, RwLock};

use crate::{append::TopicWriter, block::Block, reader::TopicReader};

#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: String,
    /// The allocator lane its blocks come from (`Allocator::next_lane`): writers of topics in
    /// different lanes write different files.
    pub(crate) lane: usize,
    pub(crate) writer: Mutex<TopicWriter>,
    /// Set while a batch append holds the writer (walrus-rust 0.2.0's fail-fast flag).
    pub(crate) batch_active: AtomicBool,
    /// Blocks from the reader's current one to the writer's active one, in order.
    pub(crate) chain: RwLock<VecDeque<Arc<Block>>>,
    pub(crate) reader: Mutex<TopicReader>,
    /// Blocks, purge floor and tail for reads by position (`log/index.rs`).
    pub(crate) positions: crate::log::Positions,
}

impl Topic {
    pub(crate) fn new(
        name: String,
        lane: usize,
        next_seq: u64,
        chain: VecDeque<Arc<Block>>,
        reader: TopicReader,
    ) -> Self {
        let floor = reader.persisted_seq.unwrap_or(0);
        let positions = crate::log::Positions::new(chain.clone(), floor, next_seq);
        let grown = chain.iter().map(|block| block.extent.len()).sum();
        Self {
            name,
            lane,
            writer: Mutex::new(TopicWriter::new(next_seq, grown)),
            batch_active: AtomicBool::new(false),
            chain: RwLock::new(chain),
            reader: Mutex::new(reader),
            positions,
        }
    }

    pub(crate) fn block_at(&self, index: usize) -> Option<Arc<Block>> {
        self.chain.read().get(index).cloned()
    }

    /// Moves the first `count` blocks of the chain to the reader's passed list; `next_seq` is
    /// the sequence number after the last of them when no block follows.
    pub(crate) fn pass_blocks(&self, reader: &mut TopicReader, count: usize, next_seq: u64) {
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
