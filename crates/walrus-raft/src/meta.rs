//! The Raft state kept beside a group's log: the vote, the committed log id and the last
//! purged log id, in the topic's metadata record (`TopicLog::set_meta`, durable and atomic:
//! after a crash it is the old record or the new one, never a mix).

use std::io;

use openraft::{
    RaftTypeConfig,
    alias::{LogIdOf, VoteOf},
};
use serde::{Deserialize, Serialize};
use walrus_rust::{META_BYTES_MAX, TopicLog};

use crate::codec;

/// The meta record of a group's topic, encoded with the [codec](crate::codec) (versioned).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct RaftMeta<C: RaftTypeConfig> {
    /// The last vote saved (`save_vote`).
    pub(crate) vote: Option<VoteOf<C>>,
    /// A committed log id whose entry was durable in this log when it was written (it may
    /// lag behind the one openraft last saved; see `WalrusLogStore::save_committed`).
    pub(crate) committed: Option<LogIdOf<C>>,
    /// The last log id purged (`purge`): entries up to it are gone.
    pub(crate) last_purged: Option<LogIdOf<C>>,
}

impl<C: RaftTypeConfig> Default for RaftMeta<C> {
    fn default() -> Self {
        Self {
            vote: None,
            committed: None,
            last_purged: None,
        }
    }
}

impl<C: RaftTypeConfig> RaftMeta<C> {
    /// The record of `log`, or the empty one if none was ever written.
    pub(crate) fn load(log: &TopicLog) -> io::Result<Self> {
        match log.meta() {
            Some(bytes) if !bytes.is_empty() => codec::decode(&bytes).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("meta record of topic {}: {e}", log.name()),
                )
            }),
            _ => Ok(Self::default()),
        }
    }

    /// The bytes to write with `set_meta`; `InvalidInput` if they exceed `META_BYTES_MAX`
    /// (only possible with large node ids or leader ids in the type config).
    pub(crate) fn encode(&self) -> io::Result<Vec<u8>> {
        let bytes = codec::encode(self)?;
        if bytes.len() > META_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "raft meta record of {} bytes exceeds META_BYTES_MAX ({META_BYTES_MAX})",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }
}
