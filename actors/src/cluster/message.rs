//! What processes tell each other on `<prefix>processes` (heard by every process) and
//! `<prefix>answers:<id>` (heard by one): heartbeats, and cluster-wide questions with
//! their answers. JSON, small, a few a second at most: nothing here is on a delivery
//! path.

use std::collections::BTreeMap;

use actix::{Message, Recipient};
use serde::{Deserialize, Serialize};

use crate::hub::HubError;

/// One process of the cluster as its last heartbeat described it (the server API's
/// `info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// The process's node id (the first part of its connections' ids).
    pub id: String,
    /// `server` (holds client connections) or `hub` (only runs actions).
    pub role: String,
    /// The comet version it runs.
    pub version: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// Connections it holds.
    pub connections: u64,
    /// Subscriptions of its connections (a connection on 3 channels counts 3).
    pub subscriptions: u64,
}

/// A message between rosters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClusterMessage {
    /// "I am here", every `every_ms`.
    Heartbeat { process: ProcessInfo, every_ms: u64 },
    /// "I am leaving" (a graceful shutdown): drop me now, not when my heartbeat expires.
    Leaving { id: String },
    /// "Which channels matching `pattern` have subscribers on your process?", answered on
    /// the asker's `<prefix>answers:<from>`.
    ChannelsQuery {
        from: String,
        query: u64,
        pattern: Option<String>,
    },
    /// One process's answer to [`ClusterMessage::ChannelsQuery`].
    ChannelsAnswer {
        from: String,
        query: u64,
        channels: BTreeMap<String, u64>,
    },
}

impl ClusterMessage {
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Only strings, integers and maps of them: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<ClusterMessage, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Whether channel `name` matches `pattern`, where `*` stands for any run of characters
/// (none included) and everything else for itself: `chat:*`, `*:lobby`, `dm:#*bob*`.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    // Without a `*` there is one part, which must be the whole name.
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        return rest.is_empty();
    };
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_documented() {
        for (pattern, name, expected) in [
            ("chat:lobby", "chat:lobby", true),
            ("chat:lobby", "chat:lobby2", false),
            ("chat:*", "chat:lobby", true),
            ("chat:*", "chat:", true),
            ("chat:*", "feed:x", false),
            ("*", "", true),
            ("*:lobby", "chat:lobby", true),
            ("*b*b*", "abcb", true),
            ("*b*b*", "abc", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("dm:#*bob*", "dm:#alice,bob", true),
        ] {
            assert_eq!(glob_matches(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn messages_round_trip_and_junk_is_refused() {
        let message = ClusterMessage::ChannelsAnswer {
            from: "p1".into(),
            query: 7,
            channels: BTreeMap::from([("a b".to_owned(), 2)]),
        };
        assert_eq!(ClusterMessage::decode(&message.encode()).unwrap(), message);
        assert!(ClusterMessage::decode(b"{\"type\":\"nope\"}").is_err());
        assert!(ClusterMessage::decode(b"\xff").is_err());
    }
}

/// The processes of the cluster: this one (counted now) and every other heard within
/// 2.5 of its heartbeat intervals, sorted by id.
#[derive(Message)]
#[rtype(result = "Vec<ProcessInfo>")]
pub struct ListProcesses;

/// Asks every process for its channels matching `pattern` (all without one) and sums
/// their subscribers; answers what came within
/// [`ANSWERS_WITHIN`](super::roster::ANSWERS_WITHIN).
#[derive(Message)]
#[rtype(result = "Result<BTreeMap<String, u64>, HubError>")]
pub struct GatherChannels {
    /// A glob (`*` for any run of characters), or none for every channel.
    pub pattern: Option<String>,
}

/// This process's role in `info` (`server` by default; a hub server says `hub`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRole(pub &'static str);

/// Says this process leaves (on a graceful shutdown); answered once it is out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave;

/// How the node reaches its roster: recipients of the messages in this module, so that
/// the node needs nothing of the roster itself.
pub struct RosterLink {
    /// [`ListProcesses`].
    pub(crate) list: Recipient<ListProcesses>,
    /// [`GatherChannels`].
    pub(crate) gather: Recipient<GatherChannels>,
    /// [`SetRole`].
    pub(crate) set_role: Recipient<SetRole>,
    /// [`Leave`].
    pub(crate) leave: Recipient<Leave>,
}
