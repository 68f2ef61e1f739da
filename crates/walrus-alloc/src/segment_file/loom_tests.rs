//! loom model of the dirty flag under group commit (T9): the sync-watermark advance.
//!
//! The topic layer's group commit (walrus-topic `durability.rs`) relies on this protocol:
//! a writer writes, marks the file dirty, then takes a ticket (`fetch_add`, SeqCst); a sync
//! leader reads the newest ticket (SeqCst), syncs every dirty file, and declares every ticket
//! up to the one it read durable. The model runs the real `SegmentFile` flag over the
//! fault-injecting storage and checks, after a power loss that drops every unsynced write,
//! that each write whose ticket the leader declared durable survived. Taking the ticket before
//! marking the file dirty, or weakening the flag's orderings, makes loom find a lost write.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p walrus-alloc --release --lib loom`.

use loom::{
    sync::{Arc, atomic::AtomicU64},
    thread,
};
use walrus_storage::{FaultyStorage, PowerLoss, Storage};

use super::SegmentFile;
use crate::sync::Ordering;

const WRITERS: u64 = 2;
const BYTES: usize = 8;

#[test]
fn loom_durable_ticket_covers_every_write_before_it() {
    loom::model(|| {
        let storage = FaultyStorage::new();
        let shared: std::sync::Arc<dyn Storage> = std::sync::Arc::new(storage.clone());
        let segment = shared.create("f", 4096).unwrap();
        let file = Arc::new(SegmentFile::new(
            1,
            1024,
            3,
            shared,
            std::sync::Arc::clone(&segment),
            true,
        ));
        let issued = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let file = Arc::clone(&file);
                let issued = Arc::clone(&issued);
                let segment = std::sync::Arc::clone(&segment);
                thread::spawn(move || {
                    segment
                        .write_at(w * BYTES as u64, &[w as u8 + 1; BYTES])
                        .unwrap();
                    file.mark_dirty();
                    issued.fetch_add(1, Ordering::SeqCst) + 1
                })
            })
            .collect();
        // The sync leader.
        let durable = issued.load(Ordering::SeqCst);
        file.sync_if_dirty().unwrap();
        let tickets: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        storage.power_loss(PowerLoss::DropAll);
        // Handles from before the power loss are dead: read what the disk kept.
        let segment = storage.open("f").unwrap();
        for (w, ticket) in tickets.into_iter().enumerate() {
            if ticket <= durable {
                let mut bytes = [0u8; BYTES];
                segment.read_at((w * BYTES) as u64, &mut bytes).unwrap();
                assert_eq!(
                    bytes,
                    [w as u8 + 1; BYTES],
                    "write {w} (ticket {ticket}) lost although ticket {durable} was durable"
                );
            }
        }
    });
}
