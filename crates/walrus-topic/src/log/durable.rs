//! Which positions are durable, from the group commit's tickets alone (no fsync logic here).
//!
//! Every write of a topic takes a ticket after it reached its file (`durability.rs`); the
//! writer keeps `(ticket, position after the write)` marks ([`DurableMarks`]), resolved against
//! the durable ticket: a position is durable once the ticket of the write that holds it is.
//! `on_durable` callbacks wait in [`DurableCallbacks`], run by whoever completes the sync round
//! that covers their ticket.

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::{Error, Result};

/// Marks kept per topic at most; past this the newest mark absorbs the next write, so a
/// position may be reported durable a sync round late (never early).
const MARKS_MAX: usize = 64;

/// A topic's writes not yet known durable. Held in `TopicWriter` (under the writer lock).
#[derive(Debug)]
pub(crate) struct DurableMarks {
    /// Every position below this is durable.
    durable_end: u64,
    /// `(ticket, position after the write)`, both ascending.
    marks: VecDeque<(u64, u64)>,
}

impl DurableMarks {
    /// Marks for a topic whose positions below `durable_end` are durable.
    pub(crate) fn new(durable_end: u64) -> Self {
        Self {
            durable_end,
            marks: VecDeque::new(),
        }
    }

    /// Records a write of the positions before `end` that took `ticket`.
    pub(crate) fn written(&mut self, ticket: u64, end: u64, durable_ticket: u64) {
        self.resolve(durable_ticket);
        let full = self.marks.len() >= MARKS_MAX;
        match self.marks.back_mut() {
            Some(last) if full => *last = (ticket, end),
            _ => self.marks.push_back((ticket, end)),
        }
    }

    /// Every position below the returned one is durable, given that every write with a
    /// ticket up to `durable_ticket` is.
    pub(crate) fn resolve(&mut self, durable_ticket: u64) -> u64 {
        while let Some(&(ticket, end)) = self.marks.front()
            && ticket <= durable_ticket
        {
            self.durable_end = self.durable_end.max(end);
            self.marks.pop_front();
        }
        self.durable_end
    }

    /// The ticket whose durability makes position `seq` (appended) durable; `None` if it is
    /// durable already.
    pub(crate) fn ticket_for(&self, seq: u64) -> Option<u64> {
        if seq < self.durable_end {
            return None;
        }
        self.marks
            .iter()
            .find(|&&(_, end)| end > seq)
            .or(self.marks.back())
            .map(|&(ticket, _)| ticket)
    }
}

/// What an `on_durable` callback is called with: `Ok` once durable, else why it never will be.
pub(crate) type DurableCallback = Box<dyn FnOnce(Result<()>) + Send>;

/// Callbacks waiting for a ticket to be durable.
#[derive(Default)]
pub(crate) struct DurableCallbacks {
    pending: Mutex<Vec<(u64, DurableCallback)>>,
}

impl std::fmt::Debug for DurableCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableCallbacks")
            .field("pending", &self.pending.lock().len())
            .finish()
    }
}

impl DurableCallbacks {
    /// Adds `callback` for `ticket`; the caller then settles, in case the round that covers it
    /// completed before this.
    pub(crate) fn push(&self, ticket: u64, callback: DurableCallback) {
        self.pending.lock().push((ticket, callback));
    }

    /// Runs, outside the lock and each exactly once, the callbacks whose ticket is up to
    /// `durable`, or all of them with the error if the instance is `poisoned`.
    pub(crate) fn settle(&self, durable: u64, poisoned: Option<&str>) {
        let due: Vec<(u64, DurableCallback)> = {
            let mut pending = self.pending.lock();
            if pending.is_empty() {
                return;
            }
            let (due, wait) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|(ticket, _)| poisoned.is_some() || *ticket <= durable);
            *pending = wait;
            due
        };
        for (_, callback) in due {
            callback(match poisoned {
                Some(reason) => Err(Error::Poisoned(reason.to_owned())),
                None => Ok(()),
            });
        }
    }
}

impl Drop for DurableCallbacks {
    fn drop(&mut self) {
        for (_, callback) in self.pending.get_mut().drain(..) {
            callback(Err(Error::ClosedBeforeDurable));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_durable_once_their_write_is_and_never_earlier() {
        let mut marks = DurableMarks::new(5);
        assert_eq!(marks.resolve(0), 5);
        assert_eq!(marks.ticket_for(4), None);
        marks.written(1, 6, 0);
        marks.written(2, 9, 0);
        assert_eq!(marks.ticket_for(5), Some(1));
        assert_eq!(marks.ticket_for(8), Some(2));
        assert_eq!(marks.resolve(1), 6);
        assert_eq!(marks.resolve(2), 9);
        assert_eq!(marks.ticket_for(8), None);
    }

    #[test]
    fn too_many_marks_fold_into_the_newest_one() {
        let mut marks = DurableMarks::new(0);
        for ticket in 1..=200u64 {
            marks.written(ticket, ticket, 0);
        }
        assert_eq!(marks.marks.len(), MARKS_MAX);
        assert_eq!(marks.ticket_for(10), Some(11), "old marks stay exact");
        assert_eq!(
            marks.ticket_for(100),
            Some(200),
            "folded: durable later, never earlier"
        );
        assert_eq!(marks.resolve(100), MARKS_MAX as u64 - 1);
        assert_eq!(marks.resolve(200), 200);
    }

    #[test]
    fn each_callback_runs_once() {
        use std::sync::{
            Arc,
            atomic::{AtomicU64, Ordering},
        };
        let runs = Arc::new(AtomicU64::new(0));
        let callbacks = DurableCallbacks::default();
        for ticket in [1, 2, 3] {
            let runs = Arc::clone(&runs);
            callbacks.push(
                ticket,
                Box::new(move |r| {
                    assert!(r.is_ok());
                    runs.fetch_add(1, Ordering::Relaxed);
                }),
            );
        }
        callbacks.settle(2, None);
        callbacks.settle(2, None);
        assert_eq!(runs.load(Ordering::Relaxed), 2);
        callbacks.settle(3, None);
        assert_eq!(runs.load(Ordering::Relaxed), 3);
    }
}
