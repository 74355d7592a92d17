//! The hub: how the processes of a cluster exchange messages (jii's `HubInterface`).
//!
//! A hub is publish/subscribe over named channels. [`MemoryHub`] is the in-process default;
//! [`RedisHub`] puts it on Redis pub/sub. The process's one link to its hub is the
//! [`HubBridge`](crate::HubBridge) actor, which keeps the subscriptions reference-counted
//! and routes what arrives. [`HubNames`] says how client channels, per-process channels
//! and the action notice are named inside the hub, under one prefix; clients can only
//! ever name the first kind.

pub mod bridge;
pub mod history;
mod memory;
pub mod presence;
pub mod process_message;
mod redis;
mod redis_history;
mod redis_presence;
mod redis_subscriber;

use actix::{Message, Recipient};
use bytes::Bytes;
use futures::future::BoxFuture;
use thiserror::Error;

use history::{HistoryPage, HistoryPolicy, HistoryQuery, Position};
use presence::{Events, PresenceStats, PresenceUpdate, PresenceWritten};

pub use self::redis::RedisHub;
pub use memory::{MemoryBroker, MemoryHub};

/// A message that arrived from the hub on a subscribed channel.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct HubMessage {
    /// The hub channel's full name (with prefix).
    pub channel: String,
    /// The message as published.
    pub payload: Bytes,
}

/// Why a hub operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HubError {
    /// The backend (e.g. Redis) cannot be reached now; the hub keeps trying.
    #[error("hub unavailable: {0}")]
    Unavailable(String),
    /// The hub was stopped or never started.
    #[error("hub is not running")]
    NotRunning,
}

impl HubError {
    /// The backend cannot be reached now, for the reason `err` gives.
    pub(crate) fn unavailable(err: impl std::fmt::Display) -> HubError {
        HubError::Unavailable(err.to_string())
    }
}

/// A publish/subscribe backend shared by the processes of a cluster.
///
/// Every method takes effect **in call order**: the command is queued before the method
/// returns, and the returned future only reports its outcome. So a caller may fire
/// `publish` twice without awaiting and the messages still arrive in order, and a
/// `subscribe` followed by an `unsubscribe` never ends up subscribed.
pub trait Hub: Send + Sync + 'static {
    /// Starts delivering messages of subscribed channels to `sink`. Called once, by the
    /// [`HubBridge`](crate::HubBridge).
    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>>;

    /// Publishes `payload` on the hub channel `channel`.
    ///
    /// This process's own subscribers get each of its messages once: a message that
    /// will not come back through the hub's subscriptions, because the publish failed
    /// (the error is returned too) or because the hub is not subscribed at that moment
    /// (reconnecting), is handed to the `sink` given to [`start`](Hub::start) by the hub
    /// itself, as if it had come back, in the order published.
    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>>;

    /// Resolves once every publish made before this call has reached the hub (or failed),
    /// so that a message sent afterwards by other means (e.g. an action's answer that the
    /// Redis queue publishes with its acknowledgement) cannot overtake them. The default,
    /// for hubs that publish at once, resolves at once.
    fn flush(&self) -> BoxFuture<'static, Result<(), HubError>> {
        Box::pin(futures::future::ready(Ok(())))
    }

    /// Subscribes this process to `channel`. The future resolves once messages published
    /// after it will be delivered. A hub that reconnects resubscribes on its own.
    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>>;

    /// Unsubscribes this process from `channel`.
    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>>;

    /// Publishes `payload` to a channel with history: stores it in the channel's history
    /// and publishes it on the channel's positioned hub channel, with its position, in one
    /// step (see [`history`]). Answers the position. A publish that fails reaches nobody:
    /// no subscriber sees a message that history does not have.
    fn publish_positioned(
        &self,
        keys: &HistoryKeys,
        payload: Bytes,
        policy: HistoryPolicy,
    ) -> BoxFuture<'static, Result<Position, HubError>> {
        let _ = (keys, payload, policy);
        Box::pin(futures::future::ready(Err(HubError::Unavailable(format!(
            "the {} hub keeps no history",
            self.name()
        )))))
    }

    /// Reads a channel's history (making its epoch when it has none, with `ttl`).
    fn history(
        &self,
        keys: &HistoryKeys,
        query: HistoryQuery,
        ttl: std::time::Duration,
    ) -> BoxFuture<'static, Result<HistoryPage, HubError>> {
        let _ = (keys, query, ttl);
        Box::pin(futures::future::ready(Err(HubError::Unavailable(format!(
            "the {} hub keeps no history",
            self.name()
        )))))
    }

    /// Applies one process's presence changes to a channel and renews its entries (see
    /// [`presence`]): removes the entries of processes that stopped renewing theirs, then
    /// `leaves`, then `joins`, and publishes what changed as join/leave events on
    /// `keys.events` when `update.events` allows. In call order with the other presence
    /// operations of this hub.
    fn presence_update(
        &self,
        keys: &PresenceKeys,
        update: PresenceUpdate,
    ) -> BoxFuture<'static, Result<PresenceWritten, HubError>> {
        let _ = (keys, update);
        no_presence(self.name())
    }

    /// The entries of a channel (their JSON), after removing those of dead processes.
    fn presence(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<Vec<std::sync::Arc<str>>, HubError>> {
        let _ = (keys, events);
        no_presence(self.name())
    }

    /// The numbers of clients and users of a channel, without listing them.
    fn presence_stats(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<PresenceStats, HubError>> {
        let _ = (keys, events);
        no_presence(self.name())
    }

    /// A short name for logs, e.g. `memory` or `redis`.
    fn name(&self) -> &'static str;
}

/// Where one channel with history lives in the hub: its positioned hub channel, and its
/// history's keys. All three share the hash tag `{<channel>}`, so that they live on one
/// node of a Redis Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryKeys {
    /// The hub channel its publications go out on, with their positions.
    pub channel: String,
    /// The publications (a Redis stream; entry ids `<offset>-1`).
    pub stream: String,
    /// Its offset and epoch (a Redis hash).
    pub meta: String,
}

/// The answer of a hub that keeps no presence.
fn no_presence<T: Send + 'static>(hub: &str) -> BoxFuture<'static, Result<T, HubError>> {
    Box::pin(futures::future::ready(Err(HubError::Unavailable(format!(
        "the {hub} hub keeps no presence"
    )))))
}

/// Where one channel's presence lives in the hub. All four share the hash tag
/// `{<channel>}`, so that they live on one node of a Redis Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceKeys {
    /// connection → entry JSON (a Redis hash).
    pub entries: String,
    /// user → number of its entries (a Redis hash).
    pub users: String,
    /// process → until when it vouches for its entries, in ms (a Redis sorted set).
    pub vouched: String,
    /// The hub channel of the channel's join and leave events.
    pub events: String,
}

/// What kind of hub channel a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubChannel<'a> {
    /// A client channel, by its client-side name.
    Channel(&'a str),
    /// The private channel of the process with this id.
    Process(&'a str),
    /// The "queue updated" notice for action workers.
    Actions,
    /// Messages for users, heard by every process.
    Users,
    /// A client channel with history, by its client-side name: messages carry positions.
    Positioned(&'a str),
    /// The join and leave events of a client channel with presence.
    PresenceEvents(&'a str),
    /// Not ours.
    Unknown,
}

/// How comet names things inside the hub (and the queue), all under one prefix:
/// `<prefix>channel:<name>`, `<prefix>process:<id>`, `<prefix>actions`, `<prefix>users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubNames {
    prefix: String,
    channel_prefix: String,
    process_prefix: String,
    actions: String,
    users: String,
    positioned_prefix: String,
    events_prefix: String,
}

impl HubNames {
    /// Names under `prefix` (e.g. `comet:`).
    pub fn new(prefix: &str) -> HubNames {
        HubNames {
            prefix: prefix.to_owned(),
            channel_prefix: format!("{prefix}channel:"),
            process_prefix: format!("{prefix}process:"),
            actions: format!("{prefix}actions"),
            users: format!("{prefix}users"),
            positioned_prefix: format!("{prefix}positioned:{{"),
            events_prefix: format!("{prefix}presence-events:{{"),
        }
    }

    /// The prefix itself, for queue keys.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The hub channel of client channel `name`.
    pub fn channel(&self, name: &str) -> String {
        format!("{}{name}", self.channel_prefix)
    }

    /// The hub channel of process `id`.
    pub fn process(&self, id: &str) -> String {
        format!("{}{id}", self.process_prefix)
    }

    /// The hub channel of "queue updated" notices.
    pub fn actions(&self) -> &str {
        &self.actions
    }

    /// The hub channel of messages for users (`send_user`, `disconnect_user`), which every
    /// process hears: a user's connections may be on any of them.
    pub fn users(&self) -> &str {
        &self.users
    }

    /// The hub channel and history keys of client channel `name` in a namespace with
    /// history: `<prefix>positioned:{<name>}`, `<prefix>history:{<name>}`,
    /// `<prefix>history-meta:{<name>}`.
    pub fn history(&self, name: &str) -> HistoryKeys {
        HistoryKeys {
            channel: format!("{}{name}}}", self.positioned_prefix),
            stream: format!("{}history:{{{name}}}", self.prefix),
            meta: format!("{}history-meta:{{{name}}}", self.prefix),
        }
    }

    /// The keys and event channel of client channel `name` in a namespace with presence:
    /// `<prefix>presence:{<name>}`, `<prefix>presence-users:{<name>}`,
    /// `<prefix>presence-vouched:{<name>}`, `<prefix>presence-events:{<name>}`.
    pub fn presence(&self, name: &str) -> PresenceKeys {
        PresenceKeys {
            entries: format!("{}presence:{{{name}}}", self.prefix),
            users: format!("{}presence-users:{{{name}}}", self.prefix),
            vouched: format!("{}presence-vouched:{{{name}}}", self.prefix),
            events: format!("{}{name}}}", self.events_prefix),
        }
    }

    /// Tells what a hub channel name is.
    pub fn classify<'a>(&self, hub_channel: &'a str) -> HubChannel<'a> {
        if let Some(name) = hub_channel.strip_prefix(self.channel_prefix.as_str()) {
            HubChannel::Channel(name)
        } else if let Some(id) = hub_channel.strip_prefix(self.process_prefix.as_str()) {
            HubChannel::Process(id)
        } else if hub_channel == self.actions {
            HubChannel::Actions
        } else if hub_channel == self.users {
            HubChannel::Users
        } else if let Some(tagged) = hub_channel.strip_prefix(self.positioned_prefix.as_str()) {
            match tagged.strip_suffix('}') {
                Some(name) => HubChannel::Positioned(name),
                None => HubChannel::Unknown,
            }
        } else if let Some(tagged) = hub_channel.strip_prefix(self.events_prefix.as_str()) {
            match tagged.strip_suffix('}') {
                Some(name) => HubChannel::PresenceEvents(name),
                None => HubChannel::Unknown,
            }
        } else {
            HubChannel::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_classify_back() {
        let names = HubNames::new("t1:");
        assert_eq!(names.channel("chat"), "t1:channel:chat");
        assert_eq!(
            names.classify("t1:channel:chat"),
            HubChannel::Channel("chat")
        );
        assert_eq!(
            names.classify(&names.process("p9")),
            HubChannel::Process("p9")
        );
        assert_eq!(names.classify("t1:actions"), HubChannel::Actions);
        assert_eq!(names.classify("t1:users"), HubChannel::Users);
        let keys = names.history("feed:a}b");
        assert_eq!(keys.channel, "t1:positioned:{feed:a}b}");
        assert_eq!(keys.stream, "t1:history:{feed:a}b}");
        assert_eq!(keys.meta, "t1:history-meta:{feed:a}b}");
        assert_eq!(
            names.classify(&keys.channel),
            HubChannel::Positioned("feed:a}b")
        );
        let presence = names.presence("room:1");
        assert_eq!(presence.entries, "t1:presence:{room:1}");
        assert_eq!(presence.vouched, "t1:presence-vouched:{room:1}");
        assert_eq!(
            names.classify(&presence.events),
            HubChannel::PresenceEvents("room:1")
        );
        assert_eq!(names.classify("t2:channel:chat"), HubChannel::Unknown);
        // A client channel that looks like an internal name stays a client channel.
        assert_eq!(
            names.classify(&names.channel("t1:process:p9")),
            HubChannel::Channel("t1:process:p9")
        );
    }
}
