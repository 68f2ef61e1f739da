//! Group commit: appenders that need durability share fdatasync calls, and a failed sync
//! poisons the instance.
//!
//! Every write takes a ticket after it has reached the file and marked it dirty. A waiter
//! whose ticket is not yet durable either waits for the sync in progress or becomes the
//! leader: it notes the newest ticket issued, syncs every dirty file, and declares all tickets
//! up to that one durable. Writes that raced the sync mark their file dirty again and are
//! covered by the next one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};
use walrus_alloc::Allocator;
use walrus_storage::Storage;

use crate::{
    Error, Result,
    format::{MARKER_BYTES, POISON_MARKER_NAME},
    log::DurableCallbacks,
};

/// The longest a round's leader waits for the appenders of the last round to join it.
const GATHER_WAIT_MAX: Duration = Duration::from_micros(200);

#[derive(Debug, Default)]
struct SyncState {
    durable: u64,
    syncing: bool,
    /// Someone asked the background thread to sync now (`request_sync`).
    wanted: bool,
    poisoned: Option<String>,
    stop: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Durability {
    /// Where to leave the poison marker (none for read-only instances).
    marker_dir: Option<Arc<dyn Storage>>,
    issued: AtomicU64,
    /// Mirror of `SyncState::durable`, read without the lock by writers for their claims.
    durable: AtomicU64,
    syncs: AtomicU64,
    /// Tickets issued from the start of the last round to its end: how many appenders the
    /// next leader expects to join.
    last_group: AtomicU64,
    /// How long the last fdatasync round took, in nanoseconds: bounds the gathering wait.
    last_sync_nanos: AtomicU64,
    /// Mirror of `SyncState::poisoned.is_some()`: every append checks it, and taking the
    /// state's lock for that made the lock's cache line bounce between every writer's core
    /// (half the time of `append` outside the kernel at 4 writers).
    poisoned: AtomicBool,
    /// Seals of sealed blocks, written once a sync covers their data.
    pub(crate) seals: crate::seal::PendingSeals,
    /// `TopicLog::on_durable` callbacks, run after the sync round that covers them.
    callbacks: DurableCallbacks,
    /// Whether `AtLeastOnce` cursor persists leave their sync to the next round.
    defer_cursors: bool,
    /// Those cursor writes, and the blocks they let go of.
    pub(crate) cursors: crate::deferred_cursors::DeferredCursors,
    state: Mutex<SyncState>,
    changed: Condvar,
}

impl Durability {
    /// Group commit for an instance whose directory is `storage` (`None`: read-only).
    /// With `defer_cursors`, `AtLeastOnce` cursor persists are made durable by the next
    /// round instead of by their own sync (`crate::deferred_cursors`).
    pub(crate) fn new(storage: Option<Arc<dyn Storage>>, defer_cursors: bool) -> Self {
        Self {
            marker_dir: storage,
            defer_cursors,
            ..Self::default()
        }
    }

    /// Whether `AtLeastOnce` cursor persists leave their sync to the next round.
    pub(crate) fn defers_cursors(&self) -> bool {
        self.defer_cursors
    }

    /// Takes a ticket for a cursor write to `file` that the next round must make durable.
    pub(crate) fn cursor_ticket(&self, file: Arc<dyn walrus_storage::Segment>) -> u64 {
        self.cursors.written(file);
        self.ticket()
    }

    /// Poisons the instance (first reason wins) and leaves the poison marker on disk, so
    /// that the next open rewrites what the kernel may have dropped.
    fn set_poisoned(&self, state: &mut SyncState, reason: String) {
        if state.poisoned.is_some() {
            return;
        }
        tracing::error!(%reason, "fsync failed: instance poisoned until reopened");
        state.poisoned = Some(reason);
        self.poisoned.store(true, Ordering::Release);
        if let Some(storage) = &self.marker_dir {
            match storage.create(POISON_MARKER_NAME, MARKER_BYTES) {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => tracing::error!(error = %err, "cannot leave the poison marker"),
            }
        }
    }

    /// Takes a ticket for a write that has reached its file and marked it dirty.
    pub(crate) fn ticket(&self) -> u64 {
        // SeqCst orders the dirty flag set before this with the leader's load of `issued`.
        self.issued.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The newest ticket issued so far.
    pub(crate) fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    /// Every write with a ticket up to this one is durable.
    pub(crate) fn durable_ticket(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Number of sync rounds performed.
    pub(crate) fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        // An append racing the poisoning may pass either way, as it could under the lock.
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        match &self.state.lock().poisoned {
            Some(reason) => Err(Error::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Returns once every write with a ticket up to `ticket` is durable.
    pub(crate) fn wait_durable(&self, ticket: u64, alloc: &Allocator) -> Result<()> {
        let mut state = self.state.lock();
        loop {
            if let Some(reason) = &state.poisoned {
                return Err(Error::Poisoned(reason.clone()));
            }
            if state.durable >= ticket {
                return Ok(());
            }
            if state.syncing {
                self.changed.wait(&mut state);
                continue;
            }
            state.syncing = true;
            let durable_before = state.durable;
            drop(state);
            self.gather(durable_before);
            let target = self.issued();
            let started = Instant::now();
            let synced = {
                let _span = tracing::debug_span!("walrus_fsync", up_to = target).entered();
                alloc
                    .sync_dirty()
                    .and_then(|files| self.cursors.sync_written().map(|()| files))
            };
            self.last_sync_nanos
                .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            // Every writer with a ticket by now comes back for the next round: those this
            // round covered, and those that arrived too late for its target.
            self.last_group.store(
                self.issued().saturating_sub(durable_before),
                Ordering::Relaxed,
            );
            self.syncs.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::fsync();
            if synced.is_ok() {
                // Every write up to `target` is durable: the blocks sealed by then may say so.
                self.seals.write_due(target);
            }
            state = self.state.lock();
            state.syncing = false;
            match synced {
                Ok(_) => {
                    state.durable = state.durable.max(target);
                    self.durable.store(state.durable, Ordering::Release);
                }
                // Never retried into a false success: the kernel may have dropped the dirty
                // pages it failed to write.
                Err(err) => self.set_poisoned(&mut state, err.to_string()),
            }
            self.changed.notify_all();
            // The callbacks this round made due run without the lock: they may call back in.
            let (durable, poisoned) = (state.durable, state.poisoned.clone());
            drop(state);
            self.callbacks.settle(durable, poisoned.as_deref());
            if poisoned.is_none() {
                self.cursors.consume_due(durable);
            }
            state = self.state.lock();
        }
    }

    /// Before a round takes its target, lets the appenders the last round released finish
    /// their next write, so that this round covers them too.
    ///
    /// Without it, the appenders woken by a round come back a few microseconds after the
    /// first of them has started the next fdatasync, and wait a whole round more: four
    /// writers then share each round two or three at a time. The leader waits until as many
    /// tickets are issued as were during the last round (from its start to its end: the
    /// writers it covered and those that came too late, who all come back), for at most half
    /// the last round's fdatasync time, yielding the core to them (they may share it). A lone
    /// writer's own ticket meets the count at once, so it never waits.
    fn gather(&self, durable_before: u64) {
        let expected = self.last_group.load(Ordering::Relaxed);
        let joined = || self.issued().saturating_sub(durable_before) >= expected;
        if expected <= 1 || joined() {
            return;
        }
        let budget = Duration::from_nanos(self.last_sync_nanos.load(Ordering::Relaxed) / 2)
            .min(GATHER_WAIT_MAX);
        let start = Instant::now();
        while !joined() && start.elapsed() < budget {
            std::thread::yield_now();
        }
    }

    /// [`Self::wait_durable`], but first waits for other syncs (the background thread's)
    /// until `deadline` (`None`: no limit), and leads one only if none covered `ticket` by
    /// then.
    pub(crate) fn wait_durable_until(
        &self,
        ticket: u64,
        alloc: &Allocator,
        deadline: Option<Instant>,
    ) -> Result<()> {
        {
            let mut state = self.state.lock();
            loop {
                if let Some(reason) = &state.poisoned {
                    return Err(Error::Poisoned(reason.clone()));
                }
                if state.durable >= ticket {
                    return Ok(());
                }
                match deadline {
                    Some(deadline) => {
                        if self.changed.wait_until(&mut state, deadline).timed_out() {
                            break;
                        }
                    }
                    None => self.changed.wait(&mut state),
                }
            }
        }
        self.wait_durable(ticket, alloc)
    }

    /// Calls `callback` once every write up to `ticket` is durable (or with the error if the
    /// instance is poisoned first): from the thread that completes the covering round, or
    /// from this one if that round has completed already.
    pub(crate) fn on_durable(&self, ticket: u64, callback: crate::log::DurableCallback) {
        self.callbacks.push(ticket, callback);
        // A round that completed before the push did not see it: settle again. Each callback
        // is taken out under the lock, so it runs once whoever settles.
        let poisoned = self.state.lock().poisoned.clone();
        self.callbacks
            .settle(self.durable_ticket(), poisoned.as_deref());
    }

    /// Poisons the instance after a failed sync outside the group commit (file creation, a
    /// cursor persist): later writes fail until reopen.
    pub(crate) fn poison(&self, reason: String) {
        let mut state = self.state.lock();
        self.set_poisoned(&mut state, reason);
        self.changed.notify_all();
        let (durable, poisoned) = (state.durable, state.poisoned.clone());
        drop(state);
        self.callbacks.settle(durable, poisoned.as_deref());
    }

    /// Passes `result` through, poisoning the instance if it is a failed sync.
    pub(crate) fn check<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result
            && err.is_sync_failure()
        {
            self.poison(err.to_string());
        }
        result
    }

    /// Makes everything written so far durable.
    pub(crate) fn flush(&self, alloc: &Allocator) -> Result<()> {
        // A fresh ticket forces a sync round even when no append took one since open: files
        // recovered from an earlier process may hold writes that only its page cache has.
        let ticket = self.ticket();
        self.wait_durable(ticket, alloc)
    }

    /// Asks the background thread to start a sync round now instead of at its next tick;
    /// returns at once. Requests made before the round starts share it.
    pub(crate) fn request_sync(&self) {
        self.state.lock().wanted = true;
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.state.lock().stop = true;
        self.changed.notify_all();
    }
}

/// The background thread of the `Milliseconds(n)` schedule; stopped and joined on drop.
#[derive(Debug)]
pub(crate) struct Ticker {
    durability: Arc<Durability>,
    handle: Option<JoinHandle<()>>,
    /// Its period.
    pub(crate) every: Duration,
}

impl Ticker {
    pub(crate) fn start(
        durability: Arc<Durability>,
        alloc: Arc<Allocator>,
        every: Duration,
    ) -> std::io::Result<Self> {
        // A thread stopped earlier (replaced by this one) has been joined.
        durability.state.lock().stop = false;
        let worker = Arc::clone(&durability);
        let handle = std::thread::Builder::new()
            .name("walrus-fsync".into())
            .spawn(move || {
                loop {
                    {
                        let mut state = worker.state.lock();
                        if !state.stop && !state.wanted {
                            let _ = worker.changed.wait_for(&mut state, every);
                        }
                        if state.stop {
                            return;
                        }
                        state.wanted = false;
                    }
                    let issued = worker.issued();
                    // Errors poison the instance inside `wait_durable`; the appenders see them.
                    // Mutant no_timed_fsync: the Milliseconds schedule never syncs.
                    if !cfg!(walrus_mutant = "no_timed_fsync") {
                        let _ = worker.wait_durable(issued, &alloc);
                    }
                }
            })?;
        Ok(Self {
            durability,
            handle: Some(handle),
            every,
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.durability.stop();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
