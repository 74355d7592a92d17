//! Messages for one connection, sent to the process that holds it over that process's
//! private hub channel (`<prefix>process:<id>`): answers to action calls, frames from the
//! server API, and server-side subscribe/unsubscribe/disconnect.
//!
//! One hub subscription per process, not per connection (as jii had): a process with
//! 10,000 connections holds one Redis subscription for them, not 10,000.

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::connection_info::ConnectionId;
use crate::protocol::RequestUid;

/// An order for one connection, wherever it lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ProcessMessage {
    /// Write `frame` to the connection as it is.
    Send {
        /// The connection.
        to: ConnectionId,
        /// The frame text.
        frame: String,
    },
    /// The answer (or error answer) to the connection's action call `request_uid`.
    Answer {
        /// The connection.
        to: ConnectionId,
        /// The call answered.
        request_uid: RequestUid,
        /// The whole `action {…}` frame.
        frame: String,
    },
    /// Subscribe the connection to `channel`, as if it had asked.
    Subscribe {
        /// The connection.
        to: ConnectionId,
        /// Channel name.
        channel: String,
    },
    /// Unsubscribe the connection from `channel`.
    Unsubscribe {
        /// The connection.
        to: ConnectionId,
        /// Channel name.
        channel: String,
    },
    /// Close the connection (code 1000).
    Disconnect {
        /// The connection.
        to: ConnectionId,
    },
}

impl ProcessMessage {
    /// The connection this is for.
    pub fn to(&self) -> &ConnectionId {
        match self {
            ProcessMessage::Send { to, .. }
            | ProcessMessage::Answer { to, .. }
            | ProcessMessage::Subscribe { to, .. }
            | ProcessMessage::Unsubscribe { to, .. }
            | ProcessMessage::Disconnect { to } => to,
        }
    }

    /// Encodes for the hub.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Decodes what [`encode`](Self::encode) made.
    pub fn decode(bytes: &[u8]) -> Result<ProcessMessage, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let message = ProcessMessage::Answer {
            to: ConnectionId::new("p1", 3),
            request_uid: RequestUid::from("r"),
            frame: "action {\"requestUid\":\"r\"}".into(),
        };
        let bytes = message.encode().unwrap();
        assert_eq!(ProcessMessage::decode(&bytes).unwrap(), message);
        assert!(ProcessMessage::decode(b"{\"op\":\"nope\"}").is_err());
    }
}
