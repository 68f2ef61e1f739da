//! Snapshots kept durably in a topic of the node's Walrus instance: [`SnapshotLog`].
//!
//! The state machine of the replicated log is in memory. A restart rebuilds it from the last
//! snapshot and the log entries after it; the log store purges the entries a snapshot covers,
//! so the snapshot must survive the restart as well: each one built or installed is appended
//! to the group's snapshot topic ([`snapshot_topic_name`]) and synced before openraft hears
//! of it (before it can purge the log it covers), and the older ones are then purged.

use std::io;

use openraft::alias::{LogIdOf, SnapshotMetaOf};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use walrus_rust::TopicLog;

use crate::{codec, types::TypeConfig};

/// The topic that holds the snapshots of Raft group `group`: `raft-snapshot-<group>`.
pub fn snapshot_topic_name(group: u64) -> String {
    format!("raft-snapshot-{group}")
}

/// A snapshot built or installed: its meta and the encoded state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMetaOf<TypeConfig>,
    pub(crate) data: Vec<u8>,
}

/// The snapshots of one group, newest last, in their topic (one entry per snapshot).
#[derive(Debug)]
pub(crate) struct SnapshotLog {
    log: TopicLog,
    /// The last log id of the newest snapshot written; held while writing, so that a snapshot
    /// built from an older state never lands after a newer one that was installed meanwhile.
    newest: Mutex<Option<LogIdOf<TypeConfig>>>,
}

impl SnapshotLog {
    /// The snapshots in `log`, and the newest of them.
    pub(crate) fn open(log: TopicLog) -> io::Result<(Self, Option<StoredSnapshot>)> {
        let newest = match log.last() {
            Some(last) if log.first().is_some() => {
                let bytes = log.read_at(last)?.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("topic {}: last snapshot {last} unreadable", log.name()),
                    )
                })?;
                let stored: StoredSnapshot = codec::decode(&bytes).map_err(|e| {
                    io::Error::new(e.kind(), format!("snapshot in topic {}: {e}", log.name()))
                })?;
                Some(stored)
            }
            _ => None,
        };
        let id = newest.as_ref().and_then(|s| s.meta.last_log_id);
        Ok((
            Self {
                log,
                newest: Mutex::new(id),
            },
            newest,
        ))
    }

    /// Writes `snapshot` durably, then purges the older ones, unless a snapshot at least as
    /// new is there already (then returns `false`). Blocks on the sync.
    pub(crate) fn save(&self, snapshot: &StoredSnapshot) -> io::Result<bool> {
        let mut newest = self.newest.lock();
        if newest.is_some() && *newest >= snapshot.meta.last_log_id {
            return Ok(false);
        }
        let position = self.log.append(&codec::encode(snapshot)?)?;
        self.log.wait_durable(position)?;
        *newest = snapshot.meta.last_log_id;
        self.log.purge_before(position)?;
        tracing::debug!(
            topic = self.log.name(),
            last_log_id = ?snapshot.meta.last_log_id,
            bytes = snapshot.data.len(),
            "snapshot saved"
        );
        Ok(true)
    }
}
