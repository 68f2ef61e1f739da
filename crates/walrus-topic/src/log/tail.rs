//! The tail of a topic: the position its next append gets, and the threads waiting for it
//! to move (`TopicLog::wait_for`, `Walrus::read_next_timeout`). The writer stores the new tail
//! after publishing and signals a condition variable only when someone waits: no polling, and
//! no lock on the append path while nobody does.

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Instant,
};

use parking_lot::{Condvar, Mutex};

#[derive(Debug)]
pub(crate) struct TailSignal {
    next: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    moved: Condvar,
}

impl TailSignal {
    pub(crate) fn new(next: u64) -> Self {
        Self {
            next: AtomicU64::new(next),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            moved: Condvar::new(),
        }
    }

    /// The position the next append gets: every position below it is published.
    pub(crate) fn next(&self) -> u64 {
        // SeqCst: see `publish`.
        self.next.load(Ordering::SeqCst)
    }

    /// The writer has published every entry before `next` (called under the writer lock).
    pub(crate) fn publish(&self, next: u64) {
        // SeqCst orders this store and the waiter count's load against a waiter's increment
        // and load of `next`: either the waiter sees the new tail, or this sees the waiter,
        // whose lock it can take only once the waiter sleeps.
        self.next.store(next, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.moved.notify_all();
        }
    }

    /// Waits until the tail is past `seq` (position `seq` was appended) or `deadline`
    /// passes (`None`: no deadline); returns whether it is.
    pub(crate) fn wait_past(&self, seq: u64, deadline: Option<Instant>) -> bool {
        if self.next() > seq {
            return true;
        }
        let mut guard = self.lock.lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let past = loop {
            if self.next() > seq {
                break true;
            }
            match deadline {
                Some(deadline) => {
                    if self.moved.wait_until(&mut guard, deadline).timed_out() {
                        break self.next() > seq;
                    }
                }
                None => self.moved.wait(&mut guard),
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        past
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[test]
    fn a_waiter_wakes_when_the_tail_moves_past_its_position() {
        let tail = Arc::new(TailSignal::new(3));
        assert!(tail.wait_past(2, Some(Instant::now())));
        let waiter = {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || tail.wait_past(5, None))
        };
        tail.publish(5);
        tail.publish(6);
        assert!(waiter.join().unwrap());
        let soon = Instant::now() + Duration::from_millis(1);
        assert!(!tail.wait_past(6, Some(soon)), "times out");
    }
}
