//! The Raft type configuration of the example replicated log: [`TypeConfig`], with its
//! application data [`Request`] and response [`Response`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who sent a [`Request`], for exactly-once appends: a client session and the serial number
/// of the request in it.
///
/// A session sends its requests one at a time, with increasing serials, and retries a request
/// with the same id until it gets an answer. The state machine remembers the last serial of
/// each session and the position it got: a request whose serial is the last one again (a
/// retry of an entry that was committed although its answer was lost, for example when the
/// leader died) is not appended twice, and gets the position of the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// The client session: unique among the sessions that write to a group.
    pub client: u64,
    /// The request's serial number in its session: each request a higher one.
    pub serial: u64,
}

/// A client request to the replicated log: append `data` to its topic `topic`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The topic of the replicated log to append to (created by its first request).
    pub topic: String,
    /// The payload to append.
    pub data: Vec<u8>,
    /// The request's id, if it is to be appended at most once across retries.
    pub id: Option<RequestId>,
}

impl Request {
    /// A request to append `data` to `topic`, without an id: appended once per time it is
    /// committed (a retry after a lost answer may append it again).
    pub fn new(topic: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: topic.into(),
            data: data.into(),
            id: None,
        }
    }

    /// This request with the id `id` (see [`RequestId`]).
    pub fn with_id(mut self, id: RequestId) -> Self {
        self.id = Some(id);
        self
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request({}, {} bytes", self.topic, self.data.len())?;
        if let Some(id) = self.id {
            write!(f, ", client {} serial {}", id.client, id.serial)?;
        }
        write!(f, ")")
    }
}

/// The response to an applied entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// For a [`Request`]: the position its data got in its topic (0 for the first), also for
    /// a retry of the last request of its session. `None` for the entries that carry no
    /// request (blank and membership entries) and for a request whose serial is below the
    /// last one of its session (a stale retry: the state machine no longer knows where it
    /// went).
    pub position: Option<u64>,
}

openraft::declare_raft_types!(
    /// The openraft type configuration of the example replicated log: [`Request`] in,
    /// [`Response`] out; node ids `u64`, nodes `BasicNode`, the Tokio runtime and the other
    /// defaults of `declare_raft_types!`.
    pub TypeConfig:
        D = Request,
        R = Response,
);
