//! The hub: how the processes of a cluster exchange messages (jii's `HubInterface`).
//!
//! A hub is publish/subscribe over named channels. [`MemoryHub`] is the in-process default;
//! [`RedisHub`] puts it on Redis pub/sub. The process's one link to its hub is the
//! [`HubBridge`](crate::HubBridge) actor, which keeps the subscriptions reference-counted
//! and routes what arrives. [`HubNames`] says how client channels, per-process channels
//! and the action notice are named inside the hub, under one prefix; clients can only
//! ever name the first kind.

pub mod bridge;
mod cluster_shards;
pub mod history;
mod memory;
pub mod partitions;
pub mod presence;
pub mod process_message;
mod redis;
mod redis_cluster;
mod redis_history;
mod redis_presence;
mod redis_shard;
mod redis_store;
mod redis_subscriber;

use actix::{Message, Recipient};
use bytes::Bytes;
use futures::future::BoxFuture;
use thiserror::Error;

use history::{HistoryPage, HistoryPolicy, HistoryQuery, Position};
use partitions::Partitions;
use presence::{Events, PresenceStats, PresenceUpdate, PresenceWritten};

pub use self::redis::RedisHub;
pub use memory::{MemoryBroker, MemoryHub};
pub use redis_cluster::RedisClusterHub;

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

    /// Whether the backend answers now (for readiness checks: `GET <prefix>/health/ready`).
    /// The default, for hubs in the process, answers yes at once.
    fn ping(&self) -> BoxFuture<'static, Result<(), HubError>> {
        Box::pin(futures::future::ready(Ok(())))
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

    /// The partitions of a hub on a Redis Cluster, whose names carry their hash tags (see
    /// [`HubNames::for_hub`]); `None` (the default) for every other hub.
    fn partitions(&self) -> Option<Partitions> {
        None
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
    /// Process heartbeats and cluster-wide questions, heard by every process.
    Processes,
    /// Answers to cluster-wide questions asked by the process with this id.
    Answers(&'a str),
    /// A client channel with history, by its client-side name: messages carry positions.
    Positioned(&'a str),
    /// The join and leave events of a client channel with presence.
    PresenceEvents(&'a str),
    /// Not ours.
    Unknown,
}

/// How comet names things inside the hub (and the queue), all under one prefix:
/// `<prefix>channel:<name>`, `<prefix>process:<id>`, `<prefix>actions`, `<prefix>users`.
///
/// On a Redis Cluster ([`HubNames::partitioned`]) every name also carries the hash tag of
/// its partition right after the prefix (`<prefix>{<tag>}channel:<name>`), so that a
/// channel's hub channel, history and presence share one slot; see [`partitions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubNames {
    prefix: String,
    partitions: Option<Partitions>,
    actions: String,
    users: String,
    processes: String,
}

/// The kinds of names, as they follow the prefix (and the tag, on a cluster).
const CHANNEL: &str = "channel:";
const PROCESS: &str = "process:";
const ANSWERS: &str = "answers:";
const POSITIONED: &str = "positioned:";
const EVENTS: &str = "presence-events:";

impl HubNames {
    /// Names under `prefix` (e.g. `comet:`), on one Redis (or in memory).
    pub fn new(prefix: &str) -> HubNames {
        HubNames::for_hub(prefix, None)
    }

    /// Names under `prefix` on a Redis Cluster with these partitions.
    pub fn partitioned(prefix: &str, partitions: Partitions) -> HubNames {
        HubNames::for_hub(prefix, Some(partitions))
    }

    /// Names under `prefix` for a hub with these partitions (see [`Hub::partitions`]).
    pub fn for_hub(prefix: &str, partitions: Option<Partitions>) -> HubNames {
        let mut names = HubNames {
            prefix: prefix.to_owned(),
            partitions,
            actions: String::new(),
            users: String::new(),
            processes: String::new(),
        };
        names.actions = names.name("actions", "actions", "");
        names.users = names.name("users", "users", "");
        names.processes = names.name("processes", "processes", "");
        names
    }

    /// `<prefix>[{<tag of partition_key>}]<kind><rest>`.
    fn name(&self, partition_key: &str, kind: &str, rest: &str) -> String {
        match &self.partitions {
            None => format!("{}{kind}{rest}", self.prefix),
            Some(partitions) => format!(
                "{}{{{}}}{kind}{rest}",
                self.prefix,
                partitions.tag(partitions.of(partition_key))
            ),
        }
    }

    /// The prefix itself, for queue keys.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The partitions, on a Redis Cluster.
    pub fn partitions(&self) -> Option<&Partitions> {
        self.partitions.as_ref()
    }

    /// The hub channel of client channel `name`.
    pub fn channel(&self, name: &str) -> String {
        self.name(name, CHANNEL, name)
    }

    /// The hub channel of process `id`.
    pub fn process(&self, id: &str) -> String {
        self.name(id, PROCESS, id)
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

    /// The hub channel of process heartbeats and cluster-wide questions
    /// (`<prefix>processes`), which every process hears.
    pub fn processes(&self) -> &str {
        &self.processes
    }

    /// The hub channel where process `id` hears the answers to its cluster-wide
    /// questions (`<prefix>answers:<id>`).
    pub fn answers(&self, id: &str) -> String {
        self.name(id, ANSWERS, id)
    }

    /// The hub channel and history keys of client channel `name` in a namespace with
    /// history: `<prefix>positioned:{<name>}`, `<prefix>history:{<name>}`,
    /// `<prefix>history-meta:{<name>}` (on a cluster `<prefix>{<tag>}positioned:<name>`,
    /// and so on).
    pub fn history(&self, name: &str) -> HistoryKeys {
        HistoryKeys {
            channel: self.keyed(name, POSITIONED),
            stream: self.keyed(name, "history:"),
            meta: self.keyed(name, "history-meta:"),
        }
    }

    /// The keys and event channel of client channel `name` in a namespace with presence:
    /// `<prefix>presence:{<name>}`, `<prefix>presence-users:{<name>}`,
    /// `<prefix>presence-vouched:{<name>}`, `<prefix>presence-events:{<name>}` (on a
    /// cluster `<prefix>{<tag>}presence:<name>`, and so on).
    pub fn presence(&self, name: &str) -> PresenceKeys {
        PresenceKeys {
            entries: self.keyed(name, "presence:"),
            users: self.keyed(name, "presence-users:"),
            vouched: self.keyed(name, "presence-vouched:"),
            events: self.keyed(name, EVENTS),
        }
    }

    /// A name sharing one slot with the others of client channel `name`: on one Redis
    /// the channel is the hash tag itself, on a cluster the partition's tag is.
    fn keyed(&self, name: &str, kind: &str) -> String {
        match self.partitions {
            None => format!("{}{kind}{{{name}}}", self.prefix),
            Some(_) => self.name(name, kind, name),
        }
    }

    /// Tells what a hub channel name is.
    pub fn classify<'a>(&self, hub_channel: &'a str) -> HubChannel<'a> {
        let Some(rest) = hub_channel.strip_prefix(self.prefix.as_str()) else {
            return HubChannel::Unknown;
        };
        let rest = match &self.partitions {
            None => rest,
            Some(_) => match rest
                .strip_prefix('{')
                .and_then(|tagged| tagged.split_once('}'))
            {
                Some((_tag, rest)) => rest,
                None => return HubChannel::Unknown,
            },
        };
        // On one Redis, positioned and event channels end with the channel as hash tag.
        let untag = |tagged: &'a str| match self.partitions {
            Some(_) => Some(tagged),
            None => tagged.strip_prefix('{')?.strip_suffix('}'),
        };
        if let Some(name) = rest.strip_prefix(CHANNEL) {
            HubChannel::Channel(name)
        } else if let Some(id) = rest.strip_prefix(PROCESS) {
            HubChannel::Process(id)
        } else if hub_channel == self.actions {
            HubChannel::Actions
        } else if hub_channel == self.users {
            HubChannel::Users
        } else if hub_channel == self.processes {
            HubChannel::Processes
        } else if let Some(id) = rest.strip_prefix(ANSWERS) {
            HubChannel::Answers(id)
        } else if let Some(tagged) = rest.strip_prefix(POSITIONED) {
            untag(tagged).map_or(HubChannel::Unknown, HubChannel::Positioned)
        } else if let Some(tagged) = rest.strip_prefix(EVENTS) {
            untag(tagged).map_or(HubChannel::Unknown, HubChannel::PresenceEvents)
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
        assert_eq!(names.classify("t1:processes"), HubChannel::Processes);
        assert_eq!(
            names.classify(&names.answers("p9")),
            HubChannel::Answers("p9")
        );
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

    #[test]
    fn partitioned_names_carry_their_tag_and_classify_back() {
        let partitions = Partitions::new(16);
        let names = HubNames::partitioned("t1:", partitions.clone());
        let tag = |name: &str| partitions.tag(partitions.of(name)).to_owned();
        let chat = names.channel("chat");
        assert_eq!(chat, format!("t1:{{{}}}channel:chat", tag("chat")));
        assert_eq!(names.classify(&chat), HubChannel::Channel("chat"));
        let process = names.process("p9");
        assert_eq!(process, format!("t1:{{{}}}process:p9", tag("p9")));
        assert_eq!(names.classify(&process), HubChannel::Process("p9"));
        assert_eq!(names.classify(names.actions()), HubChannel::Actions);
        assert_eq!(names.classify(names.users()), HubChannel::Users);
        assert_eq!(names.classify(names.processes()), HubChannel::Processes);
        assert_eq!(
            names.classify(&names.answers("p9")),
            HubChannel::Answers("p9")
        );
        // History, presence and the channel's hub names share the partition's slot.
        let history = names.history("feed:a}b");
        let presence = names.presence("feed:a}b");
        let slot = partitions::slot(names.channel("feed:a}b").as_bytes());
        for name in [
            &history.channel,
            &history.stream,
            &history.meta,
            &presence.entries,
            &presence.users,
            &presence.vouched,
            &presence.events,
        ] {
            assert_eq!(partitions::slot(name.as_bytes()), slot, "{name}");
        }
        assert_eq!(
            names.classify(&history.channel),
            HubChannel::Positioned("feed:a}b")
        );
        assert_eq!(
            names.classify(&presence.events),
            HubChannel::PresenceEvents("feed:a}b")
        );
        assert_eq!(names.classify("t1:channel:chat"), HubChannel::Unknown);
        assert_eq!(names.classify("t2:{x}channel:chat"), HubChannel::Unknown);
    }
}
