//! The Raft type configuration of the example replicated log: [`TypeConfig`], with its
//! application data [`Request`] and response [`Response`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A client request to the replicated log: append `data` to its topic `topic`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The topic of the replicated log to append to (created by its first request).
    pub topic: String,
    /// The payload to append.
    pub data: Vec<u8>,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request({}, {} bytes)", self.topic, self.data.len())
    }
}

/// The response to an applied entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// For a [`Request`]: the position its data got in its topic (0 for the first). `None`
    /// for the entries that carry no request (blank and membership entries).
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
