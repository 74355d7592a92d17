//! The `[namespaces.NAME]` tables of the config file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{Namespace, PublishRule, SubscribeRule};

/// One `[namespaces.NAME]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamespaceSettings {
    /// Who may subscribe: `anyone`, `authenticated`, `token`, `none`.
    pub subscribe: SubscribeRule,
    /// Who may publish from a client: `anyone`, `authenticated`, `subscribers`, `server`.
    pub publish: PublishRule,
    /// Whether `name#u1,u2` channels admit only the users listed.
    pub user_channels: bool,
    /// The largest payload a client may publish, in bytes.
    pub max_payload_bytes: Option<usize>,
    /// Publications kept per channel (0: no history).
    pub history_size: usize,
    /// How long a channel's history lives after its last publication, in seconds.
    pub history_ttl: u64,
    /// Whether clients may resume from a position (needs history).
    pub recover: bool,
    /// Whether a new subscriber gets the latest publication (needs history).
    pub send_latest: bool,
    /// Whether channels keep presence (an entry per subscribed connection).
    pub presence: bool,
    /// Whether subscribers may ask for join and leave events (needs presence).
    pub join_leave: bool,
    /// Seconds after which a dead process's entries are gone.
    pub presence_ttl: u64,
    /// Join and leave events only while a channel has at most this many clients.
    pub join_leave_max_clients: Option<u64>,
    /// Joins and leaves of one process within this many ms go out as one frame.
    pub join_leave_window_ms: u64,
}

impl Default for NamespaceSettings {
    fn default() -> Self {
        let declared = Namespace::new();
        NamespaceSettings {
            subscribe: declared.subscribe,
            publish: declared.publish,
            user_channels: declared.user_channels,
            max_payload_bytes: declared.max_payload_bytes,
            history_size: 0,
            history_ttl: 300,
            recover: false,
            send_latest: false,
            presence: false,
            join_leave: false,
            presence_ttl: declared.presence_ttl.as_secs(),
            join_leave_max_clients: None,
            join_leave_window_ms: declared.join_leave_window.as_millis() as u64,
        }
    }
}

impl NamespaceSettings {
    /// The namespace these settings declare.
    pub fn namespace(&self) -> Namespace {
        let mut namespace = Namespace::new()
            .subscribe(self.subscribe)
            .publish(self.publish)
            .user_channels(self.user_channels);
        namespace.max_payload_bytes = self.max_payload_bytes;
        if self.history_size > 0 {
            namespace = namespace.history(self.history_size, Duration::from_secs(self.history_ttl));
        }
        namespace.join_leave_max_clients = self.join_leave_max_clients;
        namespace
            .recover(self.recover)
            .send_latest(self.send_latest)
            .presence(self.presence)
            .join_leave(self.join_leave)
            .presence_ttl(Duration::from_secs(self.presence_ttl))
            .join_leave_window(Duration::from_millis(self.join_leave_window_ms))
    }
}
