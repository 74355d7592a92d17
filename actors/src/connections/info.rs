//! Who a connection is: its id and what its HTTP request said. Travels with every action
//! call, so a handler on another process knows the caller.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::auth::identity::Identity;

/// A connection's id, unique in the cluster: `<process id>.<counter>`. The process part
/// tells every process where to route a message for this connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(Arc<str>);

impl ConnectionId {
    /// Builds the id of connection number `n` of process `process`.
    pub fn new(process: &str, n: u64) -> ConnectionId {
        ConnectionId(Arc::from(format!("{process}.{n}")))
    }

    /// Reads an id from text, e.g. from the server API; `None` if it has no process part.
    pub fn parse(text: &str) -> Option<ConnectionId> {
        let (process, n) = text.rsplit_once('.')?;
        (!process.is_empty() && !n.is_empty()).then(|| ConnectionId(Arc::from(text)))
    }

    /// The id of the process holding this connection.
    pub fn process(&self) -> &str {
        self.0.rsplit_once('.').map_or(&self.0, |(p, _)| p)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is known about a connection: its id and its HTTP request (as jii's
/// `Connection` + `Request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Cluster-unique id.
    pub id: ConnectionId,
    /// The peer address (or the first `X-Forwarded-For` entry when trusted), if known.
    pub ip: Option<String>,
    /// Request headers, names lower-cased, repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The raw query string of the connecting request (without `?`).
    pub query: String,
    /// The transport name, e.g. `websocket` or `xhr-streaming`.
    pub transport: String,
    /// Who the connection is, once it has authenticated (anonymous until then, and for
    /// good where anonymous connections are allowed and it never does).
    #[serde(default, skip_serializing_if = "is_anonymous")]
    pub identity: Identity,
}

fn is_anonymous(identity: &Identity) -> bool {
    *identity == Identity::anonymous()
}

impl ConnectionInfo {
    /// A connection with only an id; the transport fills in the rest.
    pub fn new(id: ConnectionId, transport: impl Into<String>) -> ConnectionInfo {
        ConnectionInfo {
            id,
            ip: None,
            headers: BTreeMap::new(),
            query: String::new(),
            transport: transport.into(),
            identity: Identity::anonymous(),
        }
    }

    /// The user id, if the connection has authenticated as one.
    pub fn user(&self) -> Option<&str> {
        self.identity.user.as_deref()
    }

    /// A parameter of the connecting request's query, decoded (`token` in
    /// `?token=abc`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// A cookie of the connecting request, by name (for an authenticate hook that reads
    /// a session cookie).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// A request header by name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_know_their_process() {
        let id = ConnectionId::new("ab12", 7);
        assert_eq!(id.as_str(), "ab12.7");
        assert_eq!(id.process(), "ab12");
        assert_eq!(ConnectionId::parse("ab12.7"), Some(id));
        assert_eq!(ConnectionId::parse("nodot"), None);
        assert_eq!(ConnectionId::parse(".7"), None);
        assert_eq!(ConnectionId::parse("x."), None);
    }

    #[test]
    fn headers_are_case_insensitive() {
        let mut info = ConnectionInfo::new(ConnectionId::new("p", 1), "websocket");
        info.headers.insert("user-agent".into(), "test".into());
        assert_eq!(info.header("User-Agent"), Some("test"));
    }

    #[test]
    fn query_params_and_cookies_are_read() {
        let mut info = ConnectionInfo::new(ConnectionId::new("p", 1), "websocket");
        info.query = "a=1&token=x%2By&b".into();
        info.headers
            .insert("cookie".into(), "sid=abc; theme=dark".into());
        assert_eq!(info.query_param("token").as_deref(), Some("x+y"));
        assert_eq!(info.query_param("c"), None);
        assert_eq!(info.cookie("theme"), Some("dark"));
        assert_eq!(info.cookie("sid"), Some("abc"));
        assert_eq!(info.cookie("none"), None);
    }
}
