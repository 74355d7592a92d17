//! The node: one process of a cluster, and the server API app code uses (jii's `Server`
//! and `HubServer`): publish to channels, send to connections wherever they live,
//! subscribe them server-side, list them, hear of them coming and going.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, ThreadId};

use actix::{Actor, Addr, Message, Recipient};
use bytes::Bytes;
use bytestring::ByteString;
use futures::future::{self, BoxFuture, FutureExt};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::broadcast;

use crate::actions::queue::{ActionCall, Queue, QueueError, QueueLink};
use crate::auth::rate_limit::IpLimiter;
use crate::channels::channel_registry::{ChannelRegistry, ListSubscribers, LocalRegistry};
use crate::channels::presence_keeper::{Depart, PresenceKeeper, ReadPresence, ReadPresenceStats};
use crate::config::NodeConfig;
use crate::connections::directory::{CloseAll, ConnectionEvent, Directory, ListConnections};
use crate::connections::info::{ConnectionId, ConnectionInfo};
use crate::hub::bridge::{
    AddChannelHandler, ChannelMessage, ConnectionsLink, HubBridge, HubReady, ListenerId,
    RemoveChannelHandler,
};
use crate::hub::history::{HistoryPage, HistoryQuery};
use crate::hub::presence::{Presence, PresenceEntry, PresenceStats};
use crate::hub::process_message::{ProcessMessage, UserMessage};
use crate::hub::{Hub, HubError, HubNames};
use crate::protocol::check_name;

/// Why a server API call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NodeError {
    /// The channel name is not one a client could use.
    #[error("invalid channel name `{0}`: it {1}")]
    BadChannel(String, &'static str),
    /// The hub failed (e.g. Redis is down).
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The node's actors have stopped (the actix system is shutting down).
    #[error("the node has stopped")]
    Stopped,
    /// The channel's namespace keeps no history.
    #[error("channel `{0}` keeps no history: its namespace has no history_size")]
    NoHistory(String),
    /// The channel's namespace keeps no presence.
    #[error("channel `{0}` keeps no presence: its namespace has no presence")]
    NoPresence(String),
}

/// A message published to a channel: text, or JSON (sent as its compact text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(Bytes);

impl Payload {
    /// The payload as bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        Payload(Bytes::from(text))
    }
}

impl From<ByteString> for Payload {
    fn from(text: ByteString) -> Payload {
        Payload(text.into_bytes())
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload::from(&value)
    }
}

impl From<&Value> for Payload {
    fn from(value: &Value) -> Payload {
        match value {
            Value::String(text) => Payload::from(text.as_str()),
            other => Payload(Bytes::from(other.to_string())),
        }
    }
}

/// To the action workers' supervisor: stop taking calls and drain; answered once this
/// process has left the queue (see [`Node::shutdown`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// To the action workers' supervisor: answered once it has declared its routes to the
/// queue (see [`Node::ready`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Started;

/// How the node reaches its action workers' supervisor, where `listen_actions` is on.
pub(crate) struct SupervisorLink {
    pub(crate) drain: Recipient<Drain>,
    pub(crate) started: Recipient<Started>,
}

struct Inner {
    id: String,
    config: NodeConfig,
    names: HubNames,
    hub: Arc<dyn Hub>,
    queue: Arc<dyn Queue>,
    routes: Vec<String>,
    bridge: Addr<HubBridge>,
    directory: Addr<Directory>,
    presence: Addr<PresenceKeeper>,
    supervisor: OnceLock<SupervisorLink>,
    roster: OnceLock<crate::cluster::message::RosterLink>,
    registries: Mutex<HashMap<ThreadId, Addr<ChannelRegistry>>>,
    next_connection: AtomicU64,
    next_listener: AtomicU64,
    events: broadcast::Sender<ConnectionEvent>,
    ip_limiter: IpLimiter,
}

/// One process of a cluster, cheap to clone; the server API.
///
/// ```
/// use std::sync::Arc;
/// use comet_actors::{MemoryHub, MemoryQueue, Node, NodeConfig, Router};
///
/// # actix::System::new().block_on(async {
/// let node = Node::start(
///     NodeConfig::default(),
///     Arc::new(MemoryHub::new()),
///     Arc::new(MemoryQueue::new()),
///     Router::new(),
/// );
/// node.publish("chat", serde_json::json!({ "text": "hello" })).await.unwrap();
/// assert!(node.connections().await.unwrap().is_empty());
/// # });
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// The node's handle over its hub-side actors (the directory and the hub bridge,
    /// started here); [`Node::start`] adds the action workers.
    pub(crate) fn assemble(
        config: NodeConfig,
        hub: Arc<dyn Hub>,
        queue: Arc<dyn Queue>,
        routes: Vec<String>,
    ) -> Node {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let names = HubNames::for_hub(&config.prefix, hub.partitions());
        let (events, _) = broadcast::channel(1024);
        let directory = Directory::new(events.clone()).start();
        let bridge = HubBridge::new(
            id.clone(),
            names.clone(),
            hub.clone(),
            ConnectionsLink {
                messages: directory.clone().recipient(),
                users: directory.clone().recipient(),
            },
            config.security.namespaces.clone(),
            config.listen_actions,
            config.hub_retry_interval,
        )
        .start();
        let presence = PresenceKeeper::new(
            id.clone(),
            hub.clone(),
            names.clone(),
            config.security.namespaces.clone(),
        )
        .start();
        let ip_limiter = IpLimiter::new(config.security.per_ip);
        Node {
            inner: Arc::new(Inner {
                ip_limiter,
                id,
                config,
                names,
                hub,
                queue,
                routes,
                bridge,
                directory,
                presence,
                supervisor: OnceLock::new(),
                roster: OnceLock::new(),
                registries: Mutex::new(HashMap::new()),
                next_connection: AtomicU64::new(1),
                next_listener: AtomicU64::new(1),
                events,
            }),
        }
    }

    /// What the node's queue reaches beside itself: the hub, and this process's
    /// connections.
    pub(crate) fn queue_link(&self) -> QueueLink {
        QueueLink {
            hub: self.inner.hub.clone(),
            names: self.inner.names.clone(),
            process_id: self.inner.id.clone(),
            local: self.inner.directory.clone().recipient(),
        }
    }

    /// Links the node to its action workers' supervisor (once).
    pub(crate) fn set_supervisor(&self, supervisor: SupervisorLink) {
        let _ = self.inner.supervisor.set(supervisor);
    }

    /// This process's id (the first part of its connections' ids).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The configuration the node was started with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The action routes this node runs, sorted (empty unless `listen_actions`).
    pub fn routes(&self) -> &[String] {
        &self.inner.routes
    }

    /// How things are named in the hub.
    pub fn names(&self) -> &HubNames {
        &self.inner.names
    }

    /// Publishes a payload to a channel, on every process. Strings go as they are, other
    /// JSON as its compact text. The message is queued before this returns; the future
    /// reports the outcome. If the hub fails (Redis is down), this process's own
    /// subscribers still get the message, and the error says the others did not; so do
    /// they while the hub is not subscribed again after Redis came back.
    pub fn publish(
        &self,
        channel: &str,
        payload: impl Into<Payload>,
    ) -> impl Future<Output = Result<(), NodeError>> + Send + 'static {
        let sent = match check_name(channel, self.inner.config.limits.max_name_bytes) {
            Err(why) => Err(NodeError::BadChannel(channel.to_owned(), why)),
            Ok(()) => Ok(self.publish_bytes(channel, payload.into().into_bytes())),
        };
        async move { Ok(sent?.await?) }
    }

    /// Publishes without checking the name: for connections, whose frames were parsed.
    ///
    /// When the hub fails (Redis is down), or is not subscribed at that moment (Redis
    /// just came back and the hub's subscriber connection is not subscribed again yet),
    /// the hub hands the message to this process's own subscribers itself (see
    /// [`Hub::publish`]), once; a failure is still returned: one process keeps working
    /// on its own while the cluster cannot. (Had Redis taken a failed message after all,
    /// e.g. a pipeline that timed out while Redis stalled, local subscribers could see it
    /// twice; pub/sub promises no more than that anyway.)
    pub(crate) fn publish_bytes(
        &self,
        channel: &str,
        payload: Bytes,
    ) -> BoxFuture<'static, Result<(), HubError>> {
        crate::metrics::METRICS.messages_published.inc();
        let published = match self.inner.config.security.namespaces.of(channel).history {
            // With history: stored and published in one step, or not at all.
            Some(policy) => {
                let keys = self.inner.names.history(channel);
                let published = self.inner.hub.publish_positioned(&keys, payload, policy);
                async move { published.await.map(|_| ()) }.boxed()
            }
            None => self
                .inner
                .hub
                .publish(&self.inner.names.channel(channel), payload),
        };
        published
            .inspect(|result| {
                if result.is_err() {
                    crate::metrics::METRICS.hub_errors.inc();
                }
            })
            .boxed()
    }

    /// Reads the history of `channel` (a channel of a namespace with `history_size`):
    /// the publications after offset `since`, oldest first, or without `since` the
    /// newest; at most `limit` (and at most the namespace's `history_size`). The page
    /// says the channel's position (its last offset and its epoch): compare the epoch with
    /// one you stored to know whether the history was lost meanwhile.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// use comet_actors::auth::Namespace;
    /// # use comet_actors::{MemoryHub, MemoryQueue, Node, NodeConfig, Router};
    /// # actix::System::new().block_on(async {
    /// let mut config = NodeConfig::default();
    /// config.security.namespaces.declare(
    ///     "feed",
    ///     Namespace::new().history(100, Duration::from_secs(300)).recover(true),
    /// );
    /// # let node = Node::start(config, Arc::new(MemoryHub::new()),
    /// #     Arc::new(MemoryQueue::new()), Router::new());
    /// for n in 1..=3 {
    ///     node.publish("feed:news", n.to_string()).await.unwrap();
    /// }
    /// let page = node.history("feed:news", Some(1), 10).await.unwrap();
    /// assert_eq!(page.publications.len(), 2);
    /// assert_eq!(page.position.offset, 3);
    /// # });
    /// ```
    pub async fn history(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, NodeError> {
        if let Err(why) = check_name(channel, self.inner.config.limits.max_name_bytes) {
            return Err(NodeError::BadChannel(channel.to_owned(), why));
        }
        let Some(policy) = self.inner.config.security.namespaces.of(channel).history else {
            return Err(NodeError::NoHistory(channel.to_owned()));
        };
        let query = HistoryQuery {
            since,
            limit: limit.min(policy.size),
        };
        let keys = self.inner.names.history(channel);
        crate::metrics::METRICS.history_reads.inc();
        Ok(self.inner.hub.history(&keys, query, policy.ttl).await?)
    }

    /// Who is in `channel` (a channel of a namespace with `presence`): an entry per
    /// subscribed connection, on every process, by connection id.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use comet_actors::auth::Namespace;
    /// # use comet_actors::{MemoryHub, MemoryQueue, Node, NodeConfig, Router};
    /// # actix::System::new().block_on(async {
    /// let mut config = NodeConfig::default();
    /// config.security.namespaces.declare("room", Namespace::new().presence(true));
    /// # let node = Node::start(config, Arc::new(MemoryHub::new()),
    /// #     Arc::new(MemoryQueue::new()), Router::new());
    /// let presence = node.presence("room:1").await.unwrap();
    /// assert!(presence.clients.is_empty());
    /// let stats = node.presence_stats("room:1").await.unwrap();
    /// assert_eq!((stats.clients, stats.users), (0, 0));
    /// assert!(node.presence("lobby").await.is_err()); // no presence there
    /// # });
    /// ```
    pub async fn presence(&self, channel: &str) -> Result<Presence, NodeError> {
        self.check_presence(channel)?;
        crate::metrics::METRICS.presence_reads.inc();
        let entries = self
            .inner
            .presence
            .send(ReadPresence(Arc::from(channel)))
            .await
            .map_err(|_| NodeError::Stopped)??;
        let mut presence = Presence::default();
        for json in entries {
            match serde_json::from_str::<PresenceEntry>(&json) {
                Ok(entry) => {
                    presence.clients.insert(entry.connection.clone(), entry);
                }
                Err(err) => {
                    log::warn!("presence of `{channel}`: skipped an unreadable entry: {err}")
                }
            }
        }
        Ok(presence)
    }

    /// How many connections and distinct users are in `channel` (a channel of a
    /// namespace with `presence`), on every process, without listing them: O(1).
    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, NodeError> {
        self.check_presence(channel)?;
        crate::metrics::METRICS.presence_reads.inc();
        Ok(self
            .inner
            .presence
            .send(ReadPresenceStats(Arc::from(channel)))
            .await
            .map_err(|_| NodeError::Stopped)??)
    }

    fn check_presence(&self, channel: &str) -> Result<(), NodeError> {
        if let Err(why) = check_name(channel, self.inner.config.limits.max_name_bytes) {
            return Err(NodeError::BadChannel(channel.to_owned(), why));
        }
        match self.inner.config.security.namespaces.of(channel).presence {
            true => Ok(()),
            false => Err(NodeError::NoPresence(channel.to_owned())),
        }
    }

    /// Writes a frame to a connection on whichever process holds it (jii's
    /// `sendToConnection`).
    pub fn send(
        &self,
        to: &ConnectionId,
        frame: impl Into<String>,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        self.route(ProcessMessage::Send {
            to: to.clone(),
            frame: frame.into(),
        })
    }

    /// Subscribes a connection to a channel, as if it had sent `subscribe` (it receives
    /// `subscribed <channel>`).
    pub fn subscribe(
        &self,
        to: &ConnectionId,
        channel: &str,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        if let Err(why) = check_name(channel, self.inner.config.limits.max_name_bytes) {
            return future::ready(Err(NodeError::BadChannel(channel.to_owned(), why))).boxed();
        }
        self.route(ProcessMessage::Subscribe {
            to: to.clone(),
            channel: channel.to_owned(),
        })
    }

    /// Unsubscribes a connection from a channel (it receives `unsubscribed <channel>`).
    pub fn unsubscribe(
        &self,
        to: &ConnectionId,
        channel: &str,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        self.route(ProcessMessage::Unsubscribe {
            to: to.clone(),
            channel: channel.to_owned(),
        })
    }

    /// Closes a connection (code 1000).
    pub fn disconnect(&self, to: &ConnectionId) -> BoxFuture<'static, Result<(), NodeError>> {
        self.route(ProcessMessage::Disconnect { to: to.clone() })
    }

    /// Writes a frame to every connection of `user`, on every process (e.g. a
    /// notification for all of a user's tabs and devices).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use comet_actors::{MemoryHub, MemoryQueue, Node, NodeConfig, Router};
    /// # actix::System::new().block_on(async {
    /// # let node = Node::start(NodeConfig::default(), Arc::new(MemoryHub::new()),
    /// #     Arc::new(MemoryQueue::new()), Router::new());
    /// node.send_user("42", r#"channel notice {"text":"you have mail"}"#).await.unwrap();
    /// node.disconnect_user("42").await.unwrap();
    /// # });
    /// ```
    pub fn send_user(
        &self,
        user: &str,
        frame: impl Into<String>,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        self.to_users(UserMessage::Send {
            user: user.to_owned(),
            frame: frame.into(),
        })
    }

    /// Closes every connection of `user`, on every process (code 1000), e.g. when the
    /// user signs out or is banned. Tokens the user still holds are not revoked: refuse
    /// them in an authenticate hook, or keep their `exp` short.
    pub fn disconnect_user(&self, user: &str) -> BoxFuture<'static, Result<(), NodeError>> {
        self.to_users(UserMessage::Disconnect {
            user: user.to_owned(),
        })
    }

    pub(crate) fn to_users(
        &self,
        message: UserMessage,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        let sent = self
            .inner
            .hub
            .publish(self.inner.names.users(), Bytes::from(message.encode()));
        async move { Ok(sent.await?) }.boxed()
    }

    /// The connections held by this process.
    pub async fn connections(&self) -> Result<Vec<ConnectionInfo>, NodeError> {
        self.inner
            .directory
            .send(ListConnections)
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// The connections of this process subscribed to `channel`, sorted.
    pub async fn channel_subscribers(&self, channel: &str) -> Result<Vec<ConnectionId>, NodeError> {
        let registries: Vec<Addr<ChannelRegistry>> = self.registries().values().cloned().collect();
        let channel: Arc<str> = Arc::from(channel);
        let mut all = Vec::new();
        for registry in registries {
            match registry.send(ListSubscribers(channel.clone())).await {
                Ok(ids) => all.extend(ids),
                // A registry whose thread has stopped holds nobody any more.
                Err(_) => continue,
            }
        }
        all.sort();
        Ok(all)
    }

    /// Events for connections of this process coming and going. A receiver that falls
    /// more than 1,024 events behind skips the oldest (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    /// Has `listener` receive every message published to `channel` on any process (jii's
    /// `on('channel:<name>')`). The hub subscription is in effect when this resolves.
    pub async fn on_channel(
        &self,
        channel: &str,
        listener: Recipient<ChannelMessage>,
    ) -> Result<ListenerId, NodeError> {
        if let Err(why) = check_name(channel, self.inner.config.limits.max_name_bytes) {
            return Err(NodeError::BadChannel(channel.to_owned(), why));
        }
        let id = ListenerId(self.inner.next_listener.fetch_add(1, Ordering::Relaxed));
        self.inner
            .bridge
            .send(AddChannelHandler {
                id,
                channel: Arc::from(channel),
                listener,
            })
            .await
            .map_err(|_| NodeError::Stopped)??;
        Ok(id)
    }

    /// Removes a listener added by [`on_channel`](Self::on_channel).
    pub async fn off_channel(&self, id: ListenerId) -> Result<(), NodeError> {
        self.inner
            .bridge
            .send(RemoveChannelHandler(id))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Resolves once the node has started: its hub is connected (or has reported that it
    /// cannot be, and keeps trying), its own subscriptions are made, and, where
    /// `listen_actions` is on, its routes are declared to the queue. A process may say
    /// "ready" after this (the `cometd` binary does, for scripts and tests).
    pub async fn ready(&self) {
        // Both actors hold their mailbox until their start-up work is done, so an answer
        // from each means it is.
        let _ = self.inner.bridge.send(HubReady).await;
        if let Some(supervisor) = self.inner.supervisor.get() {
            let _ = supervisor.started.send(Started).await;
        }
    }

    /// Shuts the node down gracefully: every connection is closed with 1001 ("reconnect
    /// elsewhere"), and so is any that connects later; no new action call is taken; running
    /// ones may finish for up to `shutdown_timeout` (their callers on other processes get
    /// their answers); a call still running then is put back on the queue, unanswered, for
    /// another process. Each call is answered or put back, once. Resolves when the process
    /// has left the queue.
    pub async fn shutdown(&self) {
        log::info!("comet node {} shutting down", self.inner.id);
        let _ = self
            .inner
            .directory
            .send(CloseAll(crate::codes::CloseCode::GoingAway))
            .await;
        self.leave_roster().await;
        let _ = self.inner.presence.send(Depart).await;
        if let Some(supervisor) = self.inner.supervisor.get() {
            let _ = supervisor.drain.send(Drain).await;
        }
    }

    /// A new cluster-unique connection id.
    pub fn next_connection_id(&self) -> ConnectionId {
        let n = self.inner.next_connection.fetch_add(1, Ordering::Relaxed);
        ConnectionId::new(&self.inner.id, n)
    }

    pub(crate) fn ip_limiter(&self) -> &IpLimiter {
        &self.inner.ip_limiter
    }

    pub(crate) fn directory(&self) -> &Addr<Directory> {
        &self.inner.directory
    }

    pub(crate) fn presence_keeper(&self) -> &Addr<PresenceKeeper> {
        &self.inner.presence
    }

    pub(crate) fn bridge(&self) -> &Addr<HubBridge> {
        &self.inner.bridge
    }

    pub(crate) fn hub_name(&self) -> &'static str {
        self.inner.hub.name()
    }

    /// Links the node to its roster (once; see `cluster/`).
    pub(crate) fn set_roster(&self, roster: crate::cluster::message::RosterLink) {
        let _ = self.inner.roster.set(roster);
    }

    pub(crate) fn roster(&self) -> Option<&crate::cluster::message::RosterLink> {
        self.inner.roster.get()
    }

    /// The channel registries of this process's threads.
    pub(crate) fn registry_addrs(&self) -> Vec<Addr<ChannelRegistry>> {
        self.registries().values().cloned().collect()
    }

    pub(crate) fn hub(&self) -> &Arc<dyn Hub> {
        &self.inner.hub
    }

    /// How many action calls wait in the queue for the routes this process runs (on
    /// every process: the queue is shared).
    pub async fn queue_depth(&self) -> Result<u64, NodeError> {
        Ok(self.inner.queue.depth(&self.inner.routes).await?)
    }

    pub(crate) fn queue(&self) -> &Arc<dyn Queue> {
        &self.inner.queue
    }

    fn registries(&self) -> MutexGuard<'_, HashMap<ThreadId, Addr<ChannelRegistry>>> {
        // Each update is a single insert, so a poisoned map is still consistent.
        self.inner
            .registries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The channel registry of the calling thread, started on first use: one per arbiter,
    /// so fan-out runs on every thread that holds connections, not on one. The handle
    /// lives in a thread-local (it is not `Send`), keyed by node, since one thread may
    /// serve several nodes (tests do).
    pub(crate) fn local_registry(&self) -> LocalRegistry {
        thread_local! {
            static LOCAL: std::cell::RefCell<HashMap<String, LocalRegistry>> =
                std::cell::RefCell::new(HashMap::new());
        }
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            // A registry whose arbiter stopped (a test's system ended) is not reused.
            local.retain(|_, registry| registry.addr().connected());
            if let Some(registry) = local.get(&self.inner.id) {
                return registry.clone();
            }
            let registry = LocalRegistry::start(
                self.inner.bridge.clone(),
                self.inner.config.limits.outbound_queue_bytes,
            );
            self.registries()
                .insert(thread::current().id(), registry.addr().clone());
            local.insert(self.inner.id.clone(), registry.clone());
            registry
        })
    }

    /// Puts an action call on the queue (which tells the workers of its route).
    pub(crate) fn enqueue(&self, call: ActionCall) -> BoxFuture<'static, Result<(), NodeError>> {
        crate::metrics::METRICS.actions_queued.inc();
        let pushed = self.inner.queue.push(call);
        async move {
            let pushed = pushed.await;
            if pushed.is_err() {
                crate::metrics::METRICS.queue_errors.inc();
            }
            Ok(pushed?)
        }
        .boxed()
    }

    /// Delivers a process message: straight to the bridge when the connection is ours,
    /// else over the hub to the process that holds it.
    fn route(&self, message: ProcessMessage) -> BoxFuture<'static, Result<(), NodeError>> {
        let process = message.to().process();
        if process == self.inner.id {
            self.inner.directory.do_send(message);
            return future::ready(Ok(())).boxed();
        }
        let channel = self.inner.names.process(process);
        match message.encode() {
            Ok(bytes) => {
                let sent = self.inner.hub.publish(&channel, Bytes::from(bytes));
                async move { Ok(sent.await?) }.boxed()
            }
            // Only an id made up by the caller (with a space in it) cannot be encoded; no
            // process holds such a connection anyway.
            Err(err) => future::ready(Err(NodeError::Hub(HubError::Unavailable(format!(
                "cannot encode process message: {err}"
            )))))
            .boxed(),
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("hub", &self.inner.hub.name())
            .field("queue", &self.inner.queue.name())
            .finish_non_exhaustive()
    }
}
