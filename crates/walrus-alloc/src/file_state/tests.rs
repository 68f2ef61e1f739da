//! Unit and property tests of the file state machine.

use proptest::prelude::*;

use super::*;

#[test]
fn file_is_deleted_once_all_extents_are_sealed_consumed_and_file_is_full() {
    let state = FileState::default();
    assert_eq!(state.allocate(), Outcome::Done);
    assert_eq!(state.allocate(), Outcome::Done);
    assert_eq!(state.seal(), Outcome::Done);
    assert_eq!(state.consume(), Outcome::Done);
    assert_eq!(state.seal(), Outcome::Done);
    assert_eq!(state.consume(), Outcome::Done);
    // Everything consumed, but the allocator may still hand out blocks: keep the file.
    assert!(!state.counts().deleted);
    assert_eq!(state.mark_full(), Outcome::Delete);
    assert!(state.counts().deleted);
    // Claimed once only.
    assert_eq!(state.mark_full(), Outcome::Done);
}

#[test]
fn file_with_an_unconsumed_extent_is_never_deleted() {
    let state = FileState::default();
    assert_eq!(state.allocate(), Outcome::Done);
    assert_eq!(state.seal(), Outcome::Done);
    assert_eq!(state.mark_full(), Outcome::Done);
    assert!(!state.counts().deleted);
}

#[test]
fn file_with_an_extent_being_written_is_never_deleted() {
    let state = FileState::default();
    assert_eq!(state.allocate(), Outcome::Done);
    assert_eq!(state.mark_full(), Outcome::Done);
    // Consuming an extent that is still being written is the extent's business to refuse;
    // even if the counter were bumped the file must stay while writing > 0.
    assert_eq!(state.consume(), Outcome::Done);
    assert!(!state.counts().deleted);
    assert_eq!(state.seal(), Outcome::Delete);
}

#[test]
fn full_file_refuses_new_extents() {
    let state = FileState::default();
    assert_eq!(state.allocate(), Outcome::Done);
    let _ = state.mark_full();
    assert_eq!(state.allocate(), Outcome::Refused);
    assert_eq!(state.counts().allocated, 1);
}

#[test]
fn empty_full_file_is_deleted_at_once() {
    let state = FileState::default();
    assert_eq!(state.mark_full(), Outcome::Delete);
}

#[test]
fn recovered_extents_are_counted_sealed() {
    let state = FileState::default();
    assert_eq!(state.adopt(), Outcome::Done);
    assert_eq!(state.adopt(), Outcome::Done);
    assert_eq!(state.mark_full(), Outcome::Done);
    assert_eq!(state.consume(), Outcome::Done);
    assert_eq!(state.consume(), Outcome::Delete);
}

#[test]
fn counters_refuse_to_underflow() {
    let state = FileState::default();
    assert_eq!(state.seal(), Outcome::Refused);
    assert_eq!(state.consume(), Outcome::Refused);
    assert_eq!(state.counts(), FileCounts::default());
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Allocate,
    Adopt,
    Seal,
    Consume,
    MarkFull,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Allocate),
        Just(Op::Adopt),
        Just(Op::Seal),
        Just(Op::Consume),
        Just(Op::MarkFull)
    ]
}

proptest! {
    /// Against a plain model: counters match, the deletion is claimed exactly when the rule
    /// first holds, and never twice.
    #[test]
    fn state_machine_matches_model(ops in proptest::collection::vec(op(), 0..200)) {
        let state = FileState::default();
        let mut model = FileCounts::default();
        let mut deletions = 0;
        for op in ops {
            let expected_change = match op {
                Op::Allocate if !model.fully_allocated && !model.deleted => {
                    model.allocated += 1;
                    model.writing += 1;
                    true
                }
                Op::Adopt if !model.fully_allocated => {
                    model.allocated += 1;
                    true
                }
                Op::Seal if model.writing > 0 => {
                    model.writing -= 1;
                    true
                }
                Op::Consume if model.consumed < model.allocated => {
                    model.consumed += 1;
                    true
                }
                Op::MarkFull => {
                    model.fully_allocated = true;
                    true
                }
                _ => false,
            };
            let outcome = match op {
                Op::Allocate => state.allocate(),
                Op::Adopt => state.adopt(),
                Op::Seal => state.seal(),
                Op::Consume => state.consume(),
                Op::MarkFull => state.mark_full(),
            };
            let claim = expected_change && !model.deleted && model.deletable();
            if claim {
                model.deleted = true;
                deletions += 1;
            }
            let expected = if !expected_change {
                Outcome::Refused
            } else if claim {
                Outcome::Delete
            } else {
                Outcome::Done
            };
            prop_assert_eq!(outcome, expected);
            prop_assert_eq!(state.counts(), model);
        }
        prop_assert!(deletions <= 1);
    }
}

/// Under Miri (`cargo xtask miri`): the counters pack and unpack losslessly at their limits.
#[test]
fn miri_counters_pack_and_unpack_at_their_limits() {
    for allocated in [0, 1, EXTENTS_PER_FILE_MAX] {
        for (fully_allocated, deleted) in [(false, false), (true, false), (true, true)] {
            let counts = FileCounts {
                allocated,
                writing: allocated,
                consumed: allocated / 2,
                fully_allocated,
                deleted,
            };
            assert_eq!(FileCounts::unpack(counts.pack()), counts);
        }
    }
}

/// Under Miri: two threads consume the last two extents of a full file; exactly one of them
/// is told to delete it, whatever the interleaving Miri picks.
#[test]
fn miri_concurrent_consumers_claim_the_deletion_exactly_once() {
    let state = std::sync::Arc::new(FileState::default());
    for _ in 0..2 {
        assert_eq!(state.allocate(), Outcome::Done);
        assert_eq!(state.seal(), Outcome::Done);
    }
    assert_eq!(state.mark_full(), Outcome::Done);
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let state = std::sync::Arc::clone(&state);
            std::thread::spawn(move || state.consume())
        })
        .collect();
    let outcomes: Vec<Outcome> = consumers.into_iter().map(|t| t.join().unwrap()).collect();
    let deletes = outcomes.iter().filter(|o| **o == Outcome::Delete).count();
    assert_eq!(deletes, 1, "{outcomes:?}");
    assert!(state.counts().deleted);
    assert_eq!(state.consume(), Outcome::Refused);
}

/// Under Miri: a full file refuses allocations, and the counters never exceed their width.
#[test]
fn miri_file_refuses_extents_past_its_limit() {
    let state = FileState::default();
    state.word.store(
        FileCounts {
            allocated: EXTENTS_PER_FILE_MAX,
            ..FileCounts::default()
        }
        .pack(),
        Ordering::Relaxed,
    );
    assert_eq!(state.allocate(), Outcome::Refused);
    assert_eq!(state.adopt(), Outcome::Refused);
    assert_eq!(state.counts().allocated, EXTENTS_PER_FILE_MAX);
}
