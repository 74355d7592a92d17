//! Messages for one connection, sent to the process that holds it over that process's
//! private hub channel (`<prefix>process:<id>`): answers to action calls, frames from the
//! server API, and server-side subscribe/unsubscribe/disconnect.
//!
//! One hub subscription per process, not per connection (as jii had): a process with
//! 10,000 connections holds one Redis subscription for them, not 10,000.
//!
//! On the hub a message is a header line and a body, so that the frame (most of it) is
//! carried as it is, neither escaped nor parsed on the way:
//!
//! | message | header line | body |
//! | --- | --- | --- |
//! | [`Send`](ProcessMessage::Send) | `send <to>` | the frame |
//! | [`Answer`](ProcessMessage::Answer) | `answer <to> <requestUid as JSON>` | the `action {…}` frame |
//! | [`Subscribe`](ProcessMessage::Subscribe) | `subscribe <to>` | the channel |
//! | [`Unsubscribe`](ProcessMessage::Unsubscribe) | `unsubscribe <to>` | the channel |
//! | [`Disconnect`](ProcessMessage::Disconnect) | `disconnect <to>` | nothing |

use actix::Message;
use thiserror::Error;

use crate::connections::info::ConnectionId;
use crate::protocol::RequestUid;

/// Why a process message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProcessMessageError {
    /// The connection id holds a space or a line break, so it cannot go in a header.
    #[error("connection id `{0}` cannot be sent to another process")]
    BadConnectionId(String),
    /// The bytes are not a process message.
    #[error("malformed process message: {0}")]
    Malformed(&'static str),
}

/// An order for one connection, wherever it lives.
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
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

    /// Encodes for the hub (see the module's docs).
    pub fn encode(&self) -> Result<Vec<u8>, ProcessMessageError> {
        let to = self.to().as_str();
        if to.contains([' ', '\n', '\r']) {
            return Err(ProcessMessageError::BadConnectionId(to.to_owned()));
        }
        let (op, uid, body) = match self {
            ProcessMessage::Send { frame, .. } => ("send", None, frame.as_str()),
            ProcessMessage::Answer {
                request_uid, frame, ..
            } => ("answer", Some(request_uid), frame.as_str()),
            ProcessMessage::Subscribe { channel, .. } => ("subscribe", None, channel.as_str()),
            ProcessMessage::Unsubscribe { channel, .. } => ("unsubscribe", None, channel.as_str()),
            ProcessMessage::Disconnect { .. } => ("disconnect", None, ""),
        };
        let mut bytes = Vec::with_capacity(op.len() + to.len() + body.len() + 32);
        bytes.extend_from_slice(op.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(to.as_bytes());
        if let Some(uid) = uid {
            bytes.push(b' ');
            // A JSON string or number: never a line break in it.
            bytes.extend_from_slice(uid.as_value().to_string().as_bytes());
        }
        bytes.push(b'\n');
        bytes.extend_from_slice(body.as_bytes());
        Ok(bytes)
    }

    /// Decodes what [`encode`](Self::encode) made.
    pub fn decode(bytes: &[u8]) -> Result<ProcessMessage, ProcessMessageError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| ProcessMessageError::Malformed("not UTF-8"))?;
        let (header, body) = text
            .split_once('\n')
            .ok_or(ProcessMessageError::Malformed("no header line"))?;
        let (op, rest) = header
            .split_once(' ')
            .ok_or(ProcessMessageError::Malformed("no connection id"))?;
        let (to, uid) = match rest.split_once(' ') {
            Some((to, uid)) => (to, Some(uid)),
            None => (rest, None),
        };
        let to =
            ConnectionId::parse(to).ok_or(ProcessMessageError::Malformed("bad connection id"))?;
        let message = match (op, uid) {
            ("send", None) => ProcessMessage::Send {
                to,
                frame: body.to_owned(),
            },
            ("answer", Some(uid)) => ProcessMessage::Answer {
                to,
                request_uid: serde_json::from_str(uid)
                    .ok()
                    .and_then(RequestUid::from_value)
                    .ok_or(ProcessMessageError::Malformed("bad requestUid"))?,
                frame: body.to_owned(),
            },
            ("subscribe", None) => ProcessMessage::Subscribe {
                to,
                channel: body.to_owned(),
            },
            ("unsubscribe", None) => ProcessMessage::Unsubscribe {
                to,
                channel: body.to_owned(),
            },
            ("disconnect", None) => ProcessMessage::Disconnect { to },
            _ => return Err(ProcessMessageError::Malformed("unknown operation")),
        };
        Ok(message)
    }
}

/// An order for every connection of one user, wherever they are: published on
/// `<prefix>users`, which every process hears, and carried out by each process for the
/// user's connections it holds. On the hub: a header line `send <user as JSON>`,
/// `disconnect <user as JSON>`, `subscribe <user as JSON>` or `unsubscribe <user as
/// JSON>`, then the frame, nothing, or the channel.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum UserMessage {
    /// Write `frame` to each of the user's connections.
    Send {
        /// The user id.
        user: String,
        /// The frame text.
        frame: String,
    },
    /// Close each of the user's connections (code 1000).
    Disconnect {
        /// The user id.
        user: String,
    },
    /// Subscribe each of the user's connections to `channel`, as if it had asked.
    Subscribe {
        /// The user id.
        user: String,
        /// Channel name.
        channel: String,
    },
    /// Unsubscribe each of the user's connections from `channel`.
    Unsubscribe {
        /// The user id.
        user: String,
        /// Channel name.
        channel: String,
    },
}

impl UserMessage {
    /// The user this is for.
    pub fn user(&self) -> &str {
        match self {
            UserMessage::Send { user, .. }
            | UserMessage::Disconnect { user }
            | UserMessage::Subscribe { user, .. }
            | UserMessage::Unsubscribe { user, .. } => user,
        }
    }

    /// Encodes for the hub.
    pub fn encode(&self) -> Vec<u8> {
        let (op, body) = match self {
            UserMessage::Send { frame, .. } => ("send", frame.as_str()),
            UserMessage::Disconnect { .. } => ("disconnect", ""),
            UserMessage::Subscribe { channel, .. } => ("subscribe", channel.as_str()),
            UserMessage::Unsubscribe { channel, .. } => ("unsubscribe", channel.as_str()),
        };
        // A JSON string: never a line break in it, whatever the user id holds.
        let user = serde_json::Value::String(self.user().to_owned()).to_string();
        format!("{op} {user}\n{body}").into_bytes()
    }

    /// Decodes what [`encode`](Self::encode) made.
    pub fn decode(bytes: &[u8]) -> Result<UserMessage, ProcessMessageError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| ProcessMessageError::Malformed("not UTF-8"))?;
        let (header, body) = text
            .split_once('\n')
            .ok_or(ProcessMessageError::Malformed("no header line"))?;
        let (op, user) = header
            .split_once(' ')
            .ok_or(ProcessMessageError::Malformed("no user"))?;
        let user: String = serde_json::from_str(user)
            .map_err(|_| ProcessMessageError::Malformed("bad user id"))?;
        match op {
            "send" => Ok(UserMessage::Send {
                user,
                frame: body.to_owned(),
            }),
            "disconnect" => Ok(UserMessage::Disconnect { user }),
            "subscribe" => Ok(UserMessage::Subscribe {
                user,
                channel: body.to_owned(),
            }),
            "unsubscribe" => Ok(UserMessage::Unsubscribe {
                user,
                channel: body.to_owned(),
            }),
            _ => Err(ProcessMessageError::Malformed("unknown operation")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_messages_round_trip() {
        for message in [
            UserMessage::Send {
                user: "a b\n\"c\"".into(),
                frame: "channel x 1\n2".into(),
            },
            UserMessage::Disconnect { user: "42".into() },
            UserMessage::Subscribe {
                user: "42".into(),
                channel: "news".into(),
            },
            UserMessage::Unsubscribe {
                user: "42".into(),
                channel: "a b".into(),
            },
        ] {
            assert_eq!(UserMessage::decode(&message.encode()).unwrap(), message);
        }
        for bad in [&b"send 42\n"[..], b"nope \"42\"\n", b"send", b"\xff\n"] {
            assert!(UserMessage::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn round_trips() {
        let to = ConnectionId::new("p1", 3);
        let messages = [
            ProcessMessage::Answer {
                to: to.clone(),
                request_uid: RequestUid::from("r 1"),
                frame: "action {\"requestUid\":\"r 1\"}\nwith a line".into(),
            },
            ProcessMessage::Answer {
                to: to.clone(),
                request_uid: RequestUid::from_value(serde_json::json!(7)).unwrap(),
                frame: "action {}".into(),
            },
            ProcessMessage::Send {
                to: to.clone(),
                frame: String::new(),
            },
            ProcessMessage::Subscribe {
                to: to.clone(),
                channel: "a b".into(),
            },
            ProcessMessage::Unsubscribe {
                to: to.clone(),
                channel: "c".into(),
            },
            ProcessMessage::Disconnect { to },
        ];
        for message in messages {
            let bytes = message.encode().unwrap();
            assert_eq!(ProcessMessage::decode(&bytes).unwrap(), message);
        }
        for bad in [
            &b"{\"op\":\"nope\"}"[..],
            b"send p1.3",
            b"nope p1.3\n",
            b"answer p1.3\nframe",
            b"answer p1.3 {}\nframe",
            b"send p1.3 extra\nframe",
            b"send nodot\n",
            b"\xff\n",
        ] {
            assert!(ProcessMessage::decode(bad).is_err(), "{bad:?}");
        }
        let spaced = ProcessMessage::Disconnect {
            to: ConnectionId::parse("a b.1").unwrap(),
        };
        assert!(spaced.encode().is_err());
    }
}
