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
use walrus_rust::{TopicLog, Walrus};

use crate::{
    codec,
    log_store::blocking,
    snapshot_log::{SnapshotLog, StoredSnapshot, snapshot_topic_name},
    types::{Request, Response, TypeConfig},
};

/// What the applied entries made: the replicated topics, and where they stand.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogIdOf<TypeConfig>>,
    last_membership: StoredMembershipOf<TypeConfig>,
    /// Each topic's payloads, in the order applied: the index is the position.
    topics: BTreeMap<String, Vec<Vec<u8>>>,
    /// Per client session (`RequestId::client`): the last serial applied and its position.
    sessions: BTreeMap<u64, (u64, u64)>,
}

impl Applied {
    fn apply(&mut self, entry: EntryOf<TypeConfig>) -> Response {
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => Response::default(),
            EntryPayload::Normal(request) => self.append(request),
            EntryPayload::Membership(membership) => {
                self.last_membership =
                    StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), membership);
                Response::default()
            }
        }
    }

    fn append(&mut self, request: Request) -> Response {
        if let Some(id) = request.id
            && let Some(&(serial, position)) = self.sessions.get(&id.client)
        {
            if id.serial == serial {
                return Response {
                    position: Some(position),
                };
            }
            if id.serial < serial {
                return Response::default();
            }
        }
        let topic = self.topics.entry(request.topic).or_default();
        topic.push(request.data);
        let position = topic.len() as u64 - 1;
        if let Some(id) = request.id {
            self.sessions.insert(id.client, (id.serial, position));
        }
        Response {
            position: Some(position),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    applied: Applied,
    snapshot: Option<StoredSnapshot>,
}

impl Inner {
    /// Keeps `snapshot` as the current one unless the current one is newer.
    fn keep(&mut self, snapshot: StoredSnapshot) {
        if self
            .snapshot
            .as_ref()
            .is_none_or(|s| s.meta.last_log_id <= snapshot.meta.last_log_id)
        {
            self.snapshot = Some(snapshot);
        }
    }
}

/// The state machine of the example replicated log ([`TypeConfig`]): each applied
/// [`Request`] appends its data to its topic, and the [`Response`] says at which position
/// (requests with a [`RequestId`](crate::RequestId) are appended at most once per session
/// and serial). The state is held in memory; a snapshot is the whole state encoded with the
/// crate's codec.
///
/// - [`open`](Self::open) keeps the snapshots durably, in the group's snapshot topic
///   ([`snapshot_topic_name`]) of the node's Walrus instance, and starts from the newest one:
///   a restart rebuilds the state from it plus the log entries after it (openraft re-applies
///   them up to the committed id the log store saved), even once the log store purged the
///   entries the snapshot covers.
/// - [`new`](Self::new) keeps snapshots in memory only: a restart can rebuild the state only
///   if the log still holds every entry (no purge), as in tests of the log store alone.
///
/// Clones share the state: the snapshot builder is a clone.
#[derive(Clone, Debug, Default)]
pub struct LogStateMachine {
    inner: Arc<Mutex<Inner>>,
    snapshots: Option<Arc<SnapshotLog>>,
}

impl LogStateMachine {
    /// An empty state machine whose snapshots are kept in memory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state machine of Raft group `group`, with its snapshots in topic
    /// [`snapshot_topic_name`]`(group)` of `wal`, starting from the newest of them.
    pub fn open(wal: &Walrus, group: u64) -> io::Result<Self> {
        Self::with_snapshot_log(wal.topic_log(&snapshot_topic_name(group))?)
    }

    /// The state machine whose snapshots are kept in `log` (which nothing else writes),
    /// starting from the newest of them.
    pub fn with_snapshot_log(log: TopicLog) -> io::Result<Self> {
        let (snapshots, newest) = SnapshotLog::open(log)?;
        let mut inner = Inner::default();
        if let Some(snapshot) = newest {
            inner.applied = decode_snapshot(&snapshot.meta, &snapshot.data)?;
            tracing::info!(last_log_id = ?snapshot.meta.last_log_id, "state machine restored from its snapshot");
            inner.snapshot = Some(snapshot);
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
            snapshots: Some(Arc::new(snapshots)),
        })
    }

    /// The data applied at `position` of `topic`, if any.
    pub fn read(&self, topic: &str, position: u64) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        let index = usize::try_from(position).ok()?;
        inner.applied.topics.get(topic)?.get(index).cloned()
    }

    /// At most `max` entries of `topic` as `(position, data)`, from position `from` on.
    pub fn read_range(&self, topic: &str, from: u64, max: usize) -> Vec<(u64, Vec<u8>)> {
        let inner = self.inner.lock();
        let Some(entries) = inner.applied.topics.get(topic) else {
            return Vec::new();
        };
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(entries.len());
        (from..)
            .zip(entries[start..].iter().take(max).cloned())
            .collect()
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

    /// The names of the topics written so far, in order.
    pub fn topics(&self) -> Vec<String> {
        self.inner.lock().applied.topics.keys().cloned().collect()
    }

    /// The log id of the last entry applied.
    pub fn last_applied(&self) -> Option<LogIdOf<TypeConfig>> {
        self.inner.lock().applied.last_applied
    }

    /// Saves `snapshot` in the snapshot topic, if there is one, off the async threads.
    async fn persist(&self, snapshot: &StoredSnapshot) -> io::Result<()> {
        if let Some(snapshots) = &self.snapshots {
            let snapshots = Arc::clone(snapshots);
            let snapshot = snapshot.clone();
            blocking(move || snapshots.save(&snapshot)).await?;
        }
        Ok(())
    }
}

/// The state encoded in a snapshot, checked against its meta.
fn decode_snapshot(meta: &SnapshotMetaOf<TypeConfig>, data: &[u8]) -> io::Result<Applied> {
    let applied: Applied = codec::decode(data)?;
    if applied.last_applied != meta.last_log_id || applied.last_membership != meta.last_membership {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "snapshot data at {:?} does not match its meta at {:?}",
                applied.last_applied, meta.last_log_id
            ),
        ));
    }
    Ok(applied)
}

impl RaftSnapshotBuilder<TypeConfig> for LogStateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<TypeConfig, Vec<u8>>> {
        let snapshot = {
            let inner = self.inner.lock();
            StoredSnapshot {
                data: codec::encode(&inner.applied)?,
                meta: SnapshotMetaOf::<TypeConfig> {
                    last_log_id: inner.applied.last_applied,
                    last_membership: inner.applied.last_membership.clone(),
                },
            }
        };
        // Durable before openraft learns of it (and may purge the log it covers).
        self.persist(&snapshot).await?;
        tracing::info!(last_log_id = ?snapshot.meta.last_log_id, bytes = snapshot.data.len(), "snapshot built");
        self.inner.lock().keep(snapshot.clone());
        Ok(SnapshotOf::<TypeConfig, Vec<u8>> {
            meta: snapshot.meta,
            snapshot: snapshot.data,
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
        let applied = decode_snapshot(meta, &snapshot)?;
        let snapshot = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot,
        };
        self.persist(&snapshot).await?;
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        let mut inner = self.inner.lock();
        inner.applied = applied;
        inner.keep(snapshot);
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
