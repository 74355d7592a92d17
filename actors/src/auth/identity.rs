//! Who is behind a connection, once it has authenticated: the user, what others may see of
//! them, and until when the server believes it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A connection's identity: from its token's claims (`sub`, `info`, `exp`, `channels`) or
/// from an authenticate hook. Travels with every action call in
/// [`ConnectionInfo::identity`](crate::ConnectionInfo::identity).
///
/// ```
/// use comet_actors::Identity;
///
/// let alice = Identity::user("alice").with_info(serde_json::json!({ "name": "Alice" }));
/// assert_eq!(alice.user.as_deref(), Some("alice"));
/// assert!(Identity::anonymous().user.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    /// The user id (`sub`); `None` for an anonymous connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// What others may see of the user (the token's `info` claim), e.g. a display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
    /// When the identity expires (the token's `exp`, unix seconds); `None` for never. Before
    /// then the client must present a new token in band (`auth <token>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Channels the server subscribes the connection to at once (the `channels` claim),
    /// whatever the namespaces' rules say: the token's issuer granted them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

impl Identity {
    /// No user.
    pub fn anonymous() -> Identity {
        Identity::default()
    }

    /// User `id` (an empty id is anonymous, as an empty `sub` is).
    pub fn user(id: impl Into<String>) -> Identity {
        let id = id.into();
        Identity {
            user: (!id.is_empty()).then_some(id),
            ..Identity::default()
        }
    }

    /// With `info` shown to others.
    pub fn with_info(mut self, info: Value) -> Identity {
        self.info = Some(info);
        self
    }

    /// Expiring at `unix_seconds`.
    pub fn expiring_at(mut self, unix_seconds: u64) -> Identity {
        self.expires_at = Some(unix_seconds);
        self
    }

    /// With channels to subscribe at once.
    pub fn with_channels(mut self, channels: Vec<String>) -> Identity {
        self.channels = channels;
        self
    }

    /// Whether a user is known.
    pub fn is_authenticated(&self) -> bool {
        self.user.is_some()
    }
}
