//! loom models of the publication protocol between a topic's writer and its readers (T9).
//!
//! Frame bytes are modelled as atomics written and read with `Relaxed` ordering, so the only
//! thing that can make a reader see them is the release/acquire pairing of the publication
//! word itself: weaken it and loom finds a reader that sees an end before the bytes under it.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p walrus-topic --release --lib loom`.

use loom::{
    sync::{Arc, Mutex, atomic::AtomicU64},
    thread,
};

use super::PublishedEnd;
use crate::sync::Ordering;

/// A block's bytes, one atomic per frame slot; 0 means "never written".
struct Frames(Vec<AtomicU64>);

impl Frames {
    fn new(slots: usize) -> Self {
        Self((0..slots).map(|_| AtomicU64::new(0)).collect())
    }

    fn write(&self, slot: usize, value: u64) {
        self.0[slot].store(value, Ordering::Relaxed);
    }

    fn read(&self, slot: usize) -> u64 {
        self.0[slot].load(Ordering::Relaxed)
    }
}

struct ModelBlock {
    frames: Frames,
    published: PublishedEnd,
}

impl ModelBlock {
    fn new(slots: usize, end: u64, sealed: bool) -> Arc<Self> {
        Arc::new(Self {
            frames: Frames::new(slots),
            published: PublishedEnd::new(end, sealed),
        })
    }
}

/// Appends publish one frame at a time: a reader never sees an end past written frames, and
/// the end it sees never goes backwards.
#[test]
fn loom_reader_never_sees_a_published_frame_unwritten() {
    loom::model(|| {
        let block = ModelBlock::new(2, 0, false);
        let writer = {
            let block = Arc::clone(&block);
            thread::spawn(move || {
                for slot in 0..2 {
                    block.frames.write(slot, slot as u64 + 1);
                    block.published.publish(slot as u64 + 1);
                }
                block.published.seal();
            })
        };
        let mut last_end = 0;
        for _ in 0..2 {
            let (sealed, end) = block.published.visible();
            assert!(end >= last_end, "the visible end went backwards");
            last_end = end;
            for slot in 0..end as usize {
                assert_eq!(
                    block.frames.read(slot),
                    slot as u64 + 1,
                    "frame {slot} unwritten"
                );
            }
            if sealed {
                assert_eq!(end, 2, "a sealed block shows its final end");
            }
        }
        writer.join().unwrap();
        assert_eq!(block.published.visible(), (true, 2));
    });
}

/// A batch that ends block A and continues in a fresh block B: B is written and published
/// (sealed or not) before it joins the chain, and A's end and seal move in one store. A
/// reader sees the whole batch (A's part, then B reachable with its part) or none of it.
#[test]
fn loom_batch_across_blocks_is_visible_whole_or_not_at_all() {
    loom::model(|| {
        // Block A holds one published entry (slot 0); the batch is A slot 1 + B slot 0.
        let a = ModelBlock::new(2, 1, false);
        a.frames.write(0, 10);
        let chain: Arc<Mutex<Vec<Arc<ModelBlock>>>> = Arc::new(Mutex::new(vec![Arc::clone(&a)]));
        let writer = {
            let chain = Arc::clone(&chain);
            let a = Arc::clone(&a);
            thread::spawn(move || {
                let b = ModelBlock::new(1, 0, false);
                a.frames.write(1, 11);
                b.frames.write(0, 12);
                // The fresh block is published before any reader can reach it.
                b.published.publish(1);
                chain.lock().unwrap().push(b);
                // One store shows A's part of the batch and lets readers move on to B.
                a.published.publish_sealed(2);
            })
        };
        let (sealed, end) = a.published.visible();
        match end {
            1 => assert!(!sealed, "none of the batch is visible yet"),
            2 => {
                assert!(sealed, "A's batch part and its seal are one store");
                assert_eq!(a.frames.read(1), 11);
                let b = chain
                    .lock()
                    .unwrap()
                    .get(1)
                    .cloned()
                    .expect("B is in the chain once A shows the batch");
                let (_, b_end) = b.published.visible();
                assert_eq!(b_end, 1, "B's part of the batch is published");
                assert_eq!(b.frames.read(0), 12, "B's part of the batch is written");
            }
            other => panic!("unexpected end {other}"),
        }
        writer.join().unwrap();
    });
}
