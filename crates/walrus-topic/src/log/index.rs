//! Where a position is: the blocks a topic still holds, sorted by their first sequence number
//! (binary searched), and in each block a sparse index of every [`INDEX_STRIDE`]th entry's
//! offset, so a positional read walks at most about that many frames.
//!
//! The writer fills a block's index as it appends (its blocks start with an empty, complete
//! index). A block recovered at open may be sealed and never scanned (`seal.rs`): its index is
//! built on first use, by one pass over the block through a `ReadAhead`.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::{Mutex, RwLock};

use super::tail::TailSignal;
use crate::{
    Result,
    block::Block,
    frames::{READ_AHEAD_BYTES, ReadAhead, Step},
};

/// A block's sparse index records the offset of every entry whose distance from the block's
/// first sequence number is a multiple of this.
pub(crate) const INDEX_STRIDE: u64 = 32;

/// Whether entry `seq` of a block whose first entry is `first_seq` goes into its index.
pub(crate) fn indexed(first_seq: u64, seq: u64) -> bool {
    seq.checked_sub(first_seq)
        .is_some_and(|d| d.is_multiple_of(INDEX_STRIDE))
}

#[derive(Debug, Default)]
struct Points {
    /// Whether `points` covers every entry of the block published so far.
    built: bool,
    /// `(seq, offset in the extent)`, ascending.
    points: Vec<(u64, u64)>,
}

/// A block's sparse offset index (see the module docs).
#[derive(Debug)]
pub(crate) struct SparseIndex(Mutex<Points>);

impl SparseIndex {
    /// An index for a block holding no entry yet (`built`), or entries nobody indexed.
    pub(crate) fn new(built: bool) -> Self {
        Self(Mutex::new(Points {
            built,
            points: Vec::new(),
        }))
    }

    /// Records entry `seq` at `offset` (the writer, before publishing it).
    pub(crate) fn record(&self, seq: u64, offset: u64) {
        self.0.lock().points.push((seq, offset));
    }

    /// Records the index points of a batch piece (the writer, before publishing it).
    pub(crate) fn extend(&self, points: &[(u64, u64)]) {
        if !points.is_empty() {
            self.0.lock().points.extend_from_slice(points);
        }
    }

    /// Forgets the points of entries `cut` and later (a truncation removed them).
    pub(crate) fn truncate(&self, cut: u64) {
        self.0.lock().points.retain(|&(seq, _)| seq < cut);
    }

    /// Offset in `block` of the indexed entry closest before (or at) `seq`, or where the
    /// block's entries start. Builds the index first if the block was recovered.
    pub(crate) fn start_for(&self, block: &Block, seq: u64, ahead: &mut ReadAhead) -> Result<u64> {
        let mut points = self.0.lock();
        if !points.built {
            build(block, &mut points.points, ahead)?;
            points.built = true;
        }
        let index = points.points.partition_point(|&(s, _)| s <= seq);
        Ok(match index {
            0 => block.data_start,
            _ => points.points[index - 1].1,
        })
    }
}

/// One pass over a recovered (sealed) block, recording its index points.
fn build(block: &Block, points: &mut Vec<(u64, u64)>, ahead: &mut ReadAhead) -> Result<()> {
    let (_, end) = block.visible();
    let mut offset = block.data_start;
    while offset < end {
        match ahead.frame_at(block, offset, end, READ_AHEAD_BYTES, block.first_seq)? {
            Step::Entry { seq, next, .. } => {
                let ascending = points.last().is_none_or(|&(last, _)| seq > last);
                if indexed(block.first_seq, seq) && ascending {
                    points.push((seq, offset));
                }
                offset = next;
            }
            Step::Damaged { resume } => offset = resume,
        }
    }
    ahead.shrink();
    Ok(())
}

/// Offset in `block` of its first valid entry numbered `seq` or later, or the block's
/// published end if there is none.
pub(crate) fn seek(block: &Block, seq: u64, ahead: &mut ReadAhead) -> Result<u64> {
    let (_, end) = block.visible();
    let mut offset = block.offsets.start_for(block, seq, ahead)?;
    while offset < end {
        match ahead.frame_at(block, offset, end, READ_AHEAD_BYTES, block.first_seq)? {
            Step::Entry { seq: found, .. } if found >= seq => return Ok(offset),
            Step::Entry { next, .. } => offset = next,
            Step::Damaged { resume } => offset = resume,
        }
    }
    Ok(end)
}

/// What positional reads need of a topic: the blocks it still holds, the purge floor and the
/// tail. Lives in `Topic::positions`.
///
/// Invariants: `blocks` is sorted by `first_seq` and holds every block with an entry at or
/// after the floor (blocks of the chain and blocks the 0.2.0 reader passed but that are not
/// consumed yet; a block is consumed only once the persisted cursor, the floor, is past it);
/// a block whose entries are all below the floor may linger until the next prune.
#[derive(Debug)]
pub(crate) struct Positions {
    blocks: RwLock<VecDeque<Arc<Block>>>,
    /// The purge floor: the topic's persisted cursor (0 before it has one).
    floor: AtomicU64,
    /// The position the next append gets, with its waiters.
    pub(crate) tail: TailSignal,
}

impl Positions {
    pub(crate) fn new(blocks: VecDeque<Arc<Block>>, floor: u64, next: u64) -> Self {
        Self {
            blocks: RwLock::new(blocks),
            floor: AtomicU64::new(floor),
            tail: TailSignal::new(next),
        }
    }

    /// Positions below this one are not readable (purged, or consumed by the 0.2.0 reader).
    pub(crate) fn floor(&self) -> u64 {
        // Acquire pairs with the release in `set_floor`.
        self.floor.load(Ordering::Acquire)
    }

    /// The persisted cursor is now `seq`. Called before the blocks behind it are consumed.
    pub(crate) fn set_floor(&self, seq: u64) {
        // Release: a reader that sees a block consumed (its file gone) after this sees `seq`.
        self.floor.store(seq, Ordering::Release);
    }

    /// Adds a block the writer starts (before its entries are published).
    pub(crate) fn push(&self, block: Arc<Block>) {
        let mut blocks = self.blocks.write();
        blocks.push_back(block);
        prune(&mut blocks, self.floor());
    }

    /// Forgets the blocks whose entries are all below the floor.
    pub(crate) fn prune(&self) {
        prune(&mut self.blocks.write(), self.floor());
    }

    /// Every block held, in order.
    pub(crate) fn all(&self) -> Vec<Arc<Block>> {
        self.blocks.read().iter().cloned().collect()
    }

    /// Forgets the blocks whose first entry is `cut` or later (a truncation removed them).
    pub(crate) fn truncate(&self, cut: u64) {
        self.blocks.write().retain(|b| b.first_seq < cut);
    }

    /// The block that holds position `seq` if any does: the last with `first_seq <= seq`.
    pub(crate) fn block_for(&self, seq: u64) -> Option<Arc<Block>> {
        let blocks = self.blocks.read();
        let index = blocks.partition_point(|b| b.first_seq <= seq);
        index.checked_sub(1).map(|i| Arc::clone(&blocks[i]))
    }

    /// The first readable position if the topic has entries: the floor, or the first
    /// entry of the oldest block held if that is later.
    pub(crate) fn first(&self) -> Option<u64> {
        let floor = self.floor();
        let front = self.blocks.read().front().map_or(floor, |b| b.first_seq);
        let first = floor.max(front);
        (first < self.tail.next()).then_some(first)
    }
}

fn prune(blocks: &mut VecDeque<Arc<Block>>, floor: u64) {
    while blocks.len() >= 2 && blocks[1].first_seq <= floor {
        blocks.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use walrus_alloc::AllocConfig;
    use walrus_storage::{BackendKind, MemStorage, Storage};

    use super::*;
    use crate::{Engine, EngineConfig, FsyncSchedule};

    fn open(storage: &MemStorage) -> Arc<Engine> {
        let config = EngineConfig {
            dir: "<index>".into(),
            backend: BackendKind::Mem,
            alloc: AllocConfig {
                block_bytes: 64 * 1024,
                blocks_per_file: 4,
                // One block for the whole test, however small the topic starts.
                small_unit_bytes: 0,
                lanes: 1,
                precreate: false,
                quiet: true,
            },
            fsync: FsyncSchedule::SyncEach,
            quiet: true,
            ..EngineConfig::default()
        };
        let shared: Arc<dyn Storage> = Arc::new(storage.clone());
        Engine::open_with_storage(shared, config).unwrap()
    }

    /// `(built, seqs of the index points)` of every block `t` holds.
    fn indexes(engine: &Engine) -> Vec<(bool, Vec<u64>)> {
        let topic = engine.topic("t").unwrap();
        let blocks = topic.positions.blocks.read();
        blocks
            .iter()
            .map(|b| {
                let points = b.offsets.0.lock();
                (points.built, points.points.iter().map(|p| p.0).collect())
            })
            .collect()
    }

    #[test]
    fn the_writer_indexes_every_32nd_entry_and_recovered_blocks_are_indexed_on_first_read() {
        let storage = MemStorage::new();
        let strided = |n: u64| (0..n).step_by(INDEX_STRIDE as usize).collect::<Vec<_>>();
        {
            let engine = open(&storage);
            let log = engine.topic_log("t", FsyncSchedule::SyncEach).unwrap();
            for i in 0..70u64 {
                log.append(&i.to_le_bytes()).unwrap();
            }
            let batch: Vec<&[u8]> = vec![b"batch"; 30];
            log.append_batch(&batch).unwrap();
            assert_eq!(indexes(&engine), [(true, strided(100))]);
        }
        let engine = open(&storage);
        assert_eq!(
            indexes(&engine),
            [(false, vec![])],
            "sealed: not scanned at open"
        );
        let log = engine.topic_log("t", FsyncSchedule::SyncEach).unwrap();
        assert_eq!(log.read_at(65).unwrap(), Some(65u64.to_le_bytes().to_vec()));
        assert_eq!(
            indexes(&engine),
            [(true, strided(100))],
            "one pass at first use"
        );
        // Appends go to a new block, indexed as they are written.
        log.append(b"new").unwrap();
        assert_eq!(indexes(&engine)[1], (true, vec![100]));
    }
}
