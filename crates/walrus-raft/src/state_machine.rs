//! [`LogStateMachine`]: the state machine of the example replicated log, and its snapshot
//! builder.

use std::{collections::BTreeMap, io, sync::Arc};

use futures_util::{Stream, TryStreamExt};
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder,
    alias::{EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf},
    storage::{EntryResponder, RaftStateMachine},
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{
    codec,
    types::{Response, TypeConfig},
};

/// What the applied entries made: the replicated topics, and where they stand.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogIdOf<TypeConfig>>,
    last_membership: StoredMembershipOf<TypeConfig>,
    /// Each topic's payloads, in the order applied: the index is the position.
    topics: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Applied {
    fn apply(&mut self, entry: EntryOf<TypeConfig>) -> Response {
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => Response::default(),
            EntryPayload::Normal(request) => {
                let topic = self.topics.entry(request.topic).or_default();
                topic.push(request.data);
                Response {
                    position: Some(topic.len() as u64 - 1),
                }
            }
            EntryPayload::Membership(membership) => {
                self.last_membership =
                    StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), membership);
                Response::default()
            }
        }
    }
}

/// A snapshot built or installed: its meta and the encoded [`Applied`].
#[derive(Clone, Debug)]
struct StoredSnapshot {
    meta: SnapshotMetaOf<TypeConfig>,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    applied: Applied,
    snapshot: Option<StoredSnapshot>,
}

/// The state machine of the example replicated log ([`TypeConfig`]): each applied
/// [`Request`](crate::Request) appends its data to its topic, and the [`Response`] says at
/// which position. Held in memory; a snapshot is the whole state encoded with the crate's
/// codec, kept in memory too (a restart rebuilds the state by re-applying the log from the
/// committed id the log store saved).
///
/// Clones share the state: the snapshot builder is a clone.
#[derive(Clone, Debug, Default)]
pub struct LogStateMachine {
    inner: Arc<Mutex<Inner>>,
}

impl LogStateMachine {
    /// An empty state machine.
    pub fn new() -> Self {
        Self::default()
    }

    /// The data applied at `position` of `topic`, if any.
    pub fn read(&self, topic: &str, position: u64) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        let index = usize::try_from(position).ok()?;
        inner.applied.topics.get(topic)?.get(index).cloned()
    }

    /// How many entries `topic` holds (0 for a topic never written).
    pub fn topic_len(&self, topic: &str) -> u64 {
        let inner = self.inner.lock();
        inner
            .applied
            .topics
            .get(topic)
            .map_or(0, |t| t.len() as u64)
    }

    /// The log id of the last entry applied.
    pub fn last_applied(&self) -> Option<LogIdOf<TypeConfig>> {
        self.inner.lock().applied.last_applied
    }
}

impl RaftSnapshotBuilder<TypeConfig> for LogStateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<TypeConfig, Vec<u8>>> {
        let mut inner = self.inner.lock();
        let data = codec::encode(&inner.applied)?;
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: inner.applied.last_applied,
            last_membership: inner.applied.last_membership.clone(),
        };
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = data.len(), "snapshot built");
        inner.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(SnapshotOf::<TypeConfig, Vec<u8>> {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for LogStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> io::Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>)> {
        let inner = self.inner.lock();
        Ok((
            inner.applied.last_applied,
            inner.applied.last_membership.clone(),
        ))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let response = self.inner.lock().applied.apply(entry);
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Vec<u8>,
    ) -> io::Result<()> {
        let applied: Applied = codec::decode(&snapshot)?;
        if applied.last_applied != meta.last_log_id
            || applied.last_membership != meta.last_membership
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "snapshot data at {:?} does not match its meta at {:?}",
                    applied.last_applied, meta.last_log_id
                ),
            ));
        }
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        let mut inner = self.inner.lock();
        inner.applied = applied;
        inner.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: snapshot,
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> io::Result<Option<SnapshotOf<TypeConfig, Vec<u8>>>> {
        let inner = self.inner.lock();
        Ok(inner
            .snapshot
            .as_ref()
            .map(|s| SnapshotOf::<TypeConfig, Vec<u8>> {
                meta: s.meta.clone(),
                snapshot: s.data.clone(),
            }))
    }
}
