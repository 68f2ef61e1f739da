//! What each topic knows to be durable, for the claim every entry carries (docs/FORMAT.md,
//! "Durability claims").
//!
//! Recovery cannot tell a hole left by a crash (unsynced entries lost, later ones kept) from
//! damage to data that was durable, unless the later entries say how much was durable when
//! they were written. The tracker keeps that lower bound cheaply: it remembers the ticket of
//! the oldest and of the newest write not yet known durable, and resolves them against the
//! group commit's durable ticket at the next write. The bound lags by at most one sync round;
//! it is never ahead of the truth, which is all recovery relies on.

/// A write of the topic: its durability ticket and the sequence number after it.
type Mark = (u64, u64);

#[derive(Debug, Default)]
pub(crate) struct ClaimTracker {
    durable_end: u64,
    pending: Option<Mark>,
    latest: Option<Mark>,
}

impl ClaimTracker {
    /// A tracker for a topic whose entries before `durable_end` are durable (recovery syncs
    /// what it adopts before the first append).
    pub(crate) fn new(durable_end: u64) -> Self {
        Self {
            durable_end,
            pending: None,
            latest: None,
        }
    }

    /// Sequence number below which every entry of the topic is known durable, given that
    /// every write with a ticket up to `durable_ticket` is.
    pub(crate) fn durable_end(&mut self, durable_ticket: u64) -> u64 {
        if let Some((ticket, end)) = self.latest
            && ticket <= durable_ticket
        {
            self.durable_end = self.durable_end.max(end);
            self.pending = None;
            self.latest = None;
        } else if let Some((ticket, end)) = self.pending
            && ticket <= durable_ticket
        {
            self.durable_end = self.durable_end.max(end);
            self.pending = self.latest;
        }
        self.durable_end
    }

    /// Records a write that reached its file (entries before `seq_end`) under `ticket`.
    /// Writes of one topic take their tickets in order, under the topic's writer lock, so a
    /// durable ticket covers every earlier entry of the topic too.
    pub(crate) fn written(&mut self, ticket: u64, seq_end: u64) {
        self.latest = Some((ticket, seq_end));
        self.pending.get_or_insert((ticket, seq_end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_synced_tickets_and_never_run_ahead() {
        let mut claims = ClaimTracker::new(5);
        assert_eq!(claims.durable_end(0), 5);
        claims.written(1, 6);
        claims.written(2, 7);
        claims.written(3, 8);
        // Nothing synced yet.
        assert_eq!(claims.durable_end(0), 5);
        // A sync covering ticket 1 only: the oldest write is durable, not the newer ones.
        assert_eq!(claims.durable_end(1), 6);
        claims.written(4, 9);
        // Ticket 2 is durable but only the newest and the promoted pending mark are kept:
        // the bound lags (7 would be true) but stays below the truth.
        assert_eq!(claims.durable_end(2), 6);
        // Everything synced: the newest write resolves the bound at once.
        assert_eq!(claims.durable_end(4), 9);
        assert_eq!(claims.durable_end(100), 9);
    }

    #[test]
    fn one_write_per_sync_round_is_claimed_at_the_next_write() {
        let mut claims = ClaimTracker::new(0);
        for seq in 0..100u64 {
            let durable_ticket = seq; // ticket `seq` was synced before this write
            assert_eq!(claims.durable_end(durable_ticket), seq);
            claims.written(seq + 1, seq + 1);
        }
    }
}
