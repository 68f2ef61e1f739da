//! loom models of concurrent seal / consume / mark-full / allocate on one file.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p walrus-alloc --release --lib loom`.

use loom::{sync::Arc, thread};

use super::*;

fn deleted_by(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|o| **o == Outcome::Delete).count()
}

/// A writer seals, a reader consumes, the allocator marks the file full, all at once: the
/// file is claimed for deletion exactly once, and only when every condition holds.
#[test]
fn loom_seal_consume_full_race_deletes_exactly_once() {
    loom::model(|| {
        let state = Arc::new(FileState::default());
        assert_eq!(state.allocate(), Outcome::Done);
        assert_eq!(state.allocate(), Outcome::Done);
        assert_eq!(state.seal(), Outcome::Done);

        let s1 = Arc::clone(&state);
        let sealer = thread::spawn(move || s1.seal());
        let s2 = Arc::clone(&state);
        let consumer = thread::spawn(move || [s2.consume(), s2.consume()]);
        let s3 = Arc::clone(&state);
        let filler = thread::spawn(move || s3.mark_full());

        let mut outcomes = vec![sealer.join().unwrap(), filler.join().unwrap()];
        outcomes.extend(consumer.join().unwrap());
        let counts = state.counts();
        assert_eq!(counts.allocated, 2);
        assert_eq!(counts.writing, 0);
        assert_eq!(counts.consumed, 2, "no lost counter update");
        assert!(counts.deleted);
        assert_eq!(deleted_by(&outcomes), 1);
    });
}

/// While one extent is still being written, no interleaving of the others' transitions
/// deletes the file.
#[test]
fn loom_file_is_never_deleted_while_an_extent_is_written() {
    loom::model(|| {
        let state = Arc::new(FileState::default());
        assert_eq!(state.allocate(), Outcome::Done);
        assert_eq!(state.allocate(), Outcome::Done);

        let s1 = Arc::clone(&state);
        let a = thread::spawn(move || [s1.seal(), s1.consume()]);
        let s2 = Arc::clone(&state);
        let b = thread::spawn(move || s2.mark_full());

        let mut outcomes = a.join().unwrap().to_vec();
        outcomes.push(b.join().unwrap());
        assert_eq!(deleted_by(&outcomes), 0);
        assert!(!state.counts().deleted);
        assert_eq!(state.counts().writing, 1);
    });
}

/// An allocation racing the mark-full either lands before it (and keeps the file alive) or
/// is refused; the file is never deleted with an extent the allocator handed out.
#[test]
fn loom_allocate_racing_mark_full_never_loses_an_extent() {
    loom::model(|| {
        let state = Arc::new(FileState::default());
        let s1 = Arc::clone(&state);
        let allocator = thread::spawn(move || s1.allocate());
        let s2 = Arc::clone(&state);
        let filler = thread::spawn(move || s2.mark_full());
        let allocated = allocator.join().unwrap();
        let full = filler.join().unwrap();
        let counts = state.counts();
        match allocated {
            Outcome::Done => {
                assert_eq!(counts.allocated, 1);
                assert!(!counts.deleted);
                assert_eq!(full, Outcome::Done);
            }
            Outcome::Refused => {
                assert_eq!(counts.allocated, 0);
                assert!(counts.deleted);
                assert_eq!(full, Outcome::Delete);
            }
            Outcome::Delete => unreachable!("allocating never deletes"),
        }
    });
}
