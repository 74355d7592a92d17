//! The in-process hub: the default, needing nothing installed. Several nodes in one
//! process may share a [`MemoryBroker`] to act as a cluster (handy in tests).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::Recipient;
use bytes::Bytes;
use futures::future::{self, BoxFuture, FutureExt};

use super::history::{
    encode_positioned, HistoryPage, HistoryPolicy, HistoryQuery, MemoryHistory, Position,
};
use super::presence::{Events, MemoryPresence, PresenceStats, PresenceUpdate, PresenceWritten};
use super::{HistoryKeys, Hub, HubError, HubMessage, PresenceKeys};

#[derive(Default)]
struct BrokerState {
    next_node: u64,
    sinks: HashMap<u64, Recipient<HubMessage>>,
    /// channel → the nodes subscribed to it.
    channels: HashMap<String, HashSet<u64>>,
    /// The history of channels in namespaces that keep it.
    history: MemoryHistory,
    /// The presence of channels in namespaces that keep it.
    presence: MemoryPresence,
}

impl BrokerState {
    /// Publishes a presence operation's events and hands back its result.
    fn announce<T>(&self, keys: &PresenceKeys, (result, events): (T, Vec<Bytes>)) -> T {
        for event in &events {
            self.deliver(&keys.events, event);
        }
        result
    }

    fn deliver(&self, channel: &str, payload: &Bytes) {
        if let Some(nodes) = self.channels.get(channel) {
            for node in nodes {
                if let Some(sink) = self.sinks.get(node) {
                    sink.do_send(HubMessage {
                        channel: channel.to_owned(),
                        payload: payload.clone(),
                    });
                }
            }
        }
    }
}

/// The shared message switch behind [`MemoryHub`]s.
#[derive(Clone, Default)]
pub struct MemoryBroker {
    state: Arc<Mutex<BrokerState>>,
}

impl MemoryBroker {
    /// A broker with no nodes.
    pub fn new() -> MemoryBroker {
        MemoryBroker::default()
    }

    /// A new hub (one per node) attached to this broker.
    pub fn hub(&self) -> MemoryHub {
        let id = {
            let mut state = self.lock();
            state.next_node += 1;
            state.next_node
        };
        MemoryHub {
            broker: self.clone(),
            node: id,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BrokerState> {
        // The state stays consistent even if a holder panicked: every update is one step.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The channels some node is subscribed to (as Redis' `PUBSUB CHANNELS`).
    pub fn channels(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().channels.keys().cloned().collect();
        names.sort();
        names
    }
}

/// One node's handle on a [`MemoryBroker`]: the default [`Hub`].
///
/// ```
/// use comet_actors::{Hub, MemoryHub};
/// let hub = MemoryHub::new();
/// assert_eq!(hub.name(), "memory");
/// ```
pub struct MemoryHub {
    broker: MemoryBroker,
    node: u64,
}

impl MemoryHub {
    /// A hub on a broker of its own: a single-process cluster.
    pub fn new() -> MemoryHub {
        MemoryBroker::new().hub()
    }

    /// The broker this hub is attached to.
    pub fn broker(&self) -> &MemoryBroker {
        &self.broker
    }
}

impl Default for MemoryHub {
    fn default() -> Self {
        MemoryHub::new()
    }
}

impl Drop for MemoryHub {
    fn drop(&mut self) {
        let mut state = self.broker.lock();
        state.sinks.remove(&self.node);
        state.channels.retain(|_, nodes| {
            nodes.remove(&self.node);
            !nodes.is_empty()
        });
    }
}

impl Hub for MemoryHub {
    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>> {
        self.broker.lock().sinks.insert(self.node, sink);
        future::ready(Ok(())).boxed()
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.broker.lock().deliver(channel, &payload);
        future::ready(Ok(())).boxed()
    }

    fn publish_positioned(
        &self,
        keys: &HistoryKeys,
        payload: Bytes,
        policy: HistoryPolicy,
    ) -> BoxFuture<'static, Result<Position, HubError>> {
        let mut state = self.broker.lock();
        let encoded_payload = payload.clone();
        let position = state.history.append(&keys.stream, payload, policy);
        state.deliver(
            &keys.channel,
            &encode_positioned(&position, &encoded_payload),
        );
        future::ready(Ok(position)).boxed()
    }

    fn history(
        &self,
        keys: &HistoryKeys,
        query: HistoryQuery,
        ttl: std::time::Duration,
    ) -> BoxFuture<'static, Result<HistoryPage, HubError>> {
        let page = self.broker.lock().history.read(&keys.stream, query, ttl);
        future::ready(Ok(page)).boxed()
    }

    fn presence_update(
        &self,
        keys: &PresenceKeys,
        update: PresenceUpdate,
    ) -> BoxFuture<'static, Result<PresenceWritten, HubError>> {
        let mut state = self.broker.lock();
        let done = state.presence.update(&keys.entries, update);
        future::ready(Ok(state.announce(keys, done))).boxed()
    }

    fn presence(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<Vec<Arc<str>>, HubError>> {
        let mut state = self.broker.lock();
        let done = state.presence.read(&keys.entries, events);
        future::ready(Ok(state.announce(keys, done))).boxed()
    }

    fn presence_stats(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<PresenceStats, HubError>> {
        let mut state = self.broker.lock();
        let done = state.presence.stats(&keys.entries, events);
        future::ready(Ok(state.announce(keys, done))).boxed()
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.broker
            .lock()
            .channels
            .entry(channel.to_owned())
            .or_default()
            .insert(self.node);
        future::ready(Ok(())).boxed()
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        let mut state = self.broker.lock();
        if let Some(nodes) = state.channels.get_mut(channel) {
            nodes.remove(&self.node);
            if nodes.is_empty() {
                state.channels.remove(channel);
            }
        }
        future::ready(Ok(())).boxed()
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
