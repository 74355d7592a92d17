//! The channel registry: channel → the local connections subscribed to it.
//!
//! There is one registry per thread that holds connections (one per actix-web worker),
//! so a message for 10,000 subscribers is fanned out by every thread at once, each to its
//! own connections, never funnelled through one. A registry asks the [`HubBridge`] at
//! each join ([`Activate`]) and tells it when a channel loses its last local subscriber
//! ([`Deactivate`]); the bridge keeps the process's hub subscription reference-counted
//! over all registries and server-side listeners, and is the one place that knows
//! whether it is in effect: its [`ChannelReady`] answer lets the joined connections in
//! (`subscribed`, then the channel's messages, never the other way round).
//!
//! A registry writes each message straight to the outlet of each subscriber (shared with
//! the connection and drained by its transport), not through the connection actor's mailbox:
//! see `outlet.rs` for why that is both faster and exact. Connections of its thread
//! join and leave through a [`LocalRegistry`] by plain calls; the actor itself takes
//! what comes from other threads: the bridge's [`Dispatch`] and [`ChannelReady`], and
//! [`ListSubscribers`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;

use crate::codes::ErrorCode;
use crate::connections::info::ConnectionId;
use crate::connections::outlet::Outlet;
use crate::hub::bridge::{Activate, ChannelReady, Deactivate, Dispatch, HubBridge, RegistryLink};
use crate::protocol::{error_frame, subscribed_frame};
use crate::transport::TransportError;

/// To a connection: its subscription to a channel is in effect (or failed with local
/// delivery going on), so publishes it held back for it may go.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionSettled(pub Arc<str>);

/// A connection that joined a channel and waits for the hub's answer: it joins the
/// members (and gets the channel's messages) once the answer comes, so that nothing of
/// the channel reaches it before `subscribed`.
struct Waiting {
    id: ConnectionId,
    outlet: Outlet,
    settled: Recipient<SubscriptionSettled>,
}

/// The local subscribers of one channel. A `Vec` so that fan-out is a straight walk;
/// `index` finds a member's slot for O(1) removal (`swap_remove`).
///
/// Whether the channel's hub subscription is in effect is the bridge's to know (one
/// place): every join asks it ([`Activate`]) and hears [`ChannelReady`], at once when the
/// subscription is in effect already.
#[derive(Default)]
struct Subscribers {
    members: Vec<Outlet>,
    /// The connection of each member, slot for slot.
    ids: Vec<ConnectionId>,
    index: HashMap<usize, usize>,
    /// Joined, waiting for the bridge's answer.
    waiting: Vec<Waiting>,
    /// Members told that the hub failed (they get this server's messages meanwhile),
    /// still to be told `subscribed` when it is back.
    unconfirmed: Vec<usize>,
}

impl Subscribers {
    fn insert(&mut self, id: ConnectionId, outlet: Outlet) {
        self.index.insert(outlet.key(), self.members.len());
        self.members.push(outlet);
        self.ids.push(id);
    }

    fn remove(&mut self, key: usize) {
        self.waiting.retain(|waiting| waiting.outlet.key() != key);
        self.unconfirmed.retain(|unconfirmed| *unconfirmed != key);
        let Some(slot) = self.index.remove(&key) else {
            return;
        };
        self.members.swap_remove(slot);
        self.ids.swap_remove(slot);
        if let Some(moved) = self.members.get(slot) {
            self.index.insert(moved.key(), slot);
        }
    }

    fn has(&self, key: usize) -> bool {
        self.index.contains_key(&key) || self.waiting.iter().any(|w| w.outlet.key() == key)
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.waiting.is_empty()
    }
}

/// What a registry holds, shared by the actor (messages from other threads: the bridge's
/// fan-out and answers) and the connections of its thread (joining and leaving are plain
/// calls, see [`crate::connections::outlet`]).
struct Channels {
    bridge: Addr<HubBridge>,
    /// The registry actor, as the bridge knows it.
    registry: Option<RegistryLink>,
    channels: HashMap<Arc<str>, Subscribers>,
}

impl Channels {
    /// Records the join and asks the bridge; `settled` hears [`SubscriptionSettled`]
    /// with its answer.
    fn join(
        &mut self,
        channel: Arc<str>,
        id: &ConnectionId,
        outlet: &Outlet,
        settled: &Recipient<SubscriptionSettled>,
    ) {
        let subscribers = self.channels.entry(channel.clone()).or_default();
        if subscribers.has(outlet.key()) {
            return;
        }
        subscribers.waiting.push(Waiting {
            id: id.clone(),
            outlet: outlet.clone(),
            settled: settled.clone(),
        });
        if let Some(registry) = &self.registry {
            self.bridge.do_send(Activate {
                channel,
                registry: registry.clone(),
            });
        }
    }

    fn leave(&mut self, channel: &str, outlet: &Outlet) {
        let Some(subscribers) = self.channels.get_mut(channel) else {
            return;
        };
        subscribers.remove(outlet.key());
        if subscribers.is_empty() {
            let Some((channel, _)) = self.channels.remove_entry(channel) else {
                return;
            };
            if let Some(registry) = &self.registry {
                self.bridge.do_send(Deactivate {
                    channel,
                    registry: registry.id,
                });
            }
        }
    }
}

/// The subscriptions of the connections on one thread.
pub struct ChannelRegistry {
    channels: Rc<RefCell<Channels>>,
}

impl Actor for ChannelRegistry {
    type Context = Context<Self>;
}

/// A thread's registry as its connections use it: join and leave channels by plain
/// calls, in order with everything else the connection writes. Not `Send`: it belongs to
/// the thread it was made on ([`Node`](crate::Node) keeps one per thread).
#[derive(Clone)]
pub struct LocalRegistry {
    channels: Rc<RefCell<Channels>>,
    addr: Addr<ChannelRegistry>,
}

impl LocalRegistry {
    /// Starts a registry on the current thread, reporting channel activity to `bridge`.
    pub fn start(bridge: Addr<HubBridge>) -> LocalRegistry {
        let channels = Rc::new(RefCell::new(Channels {
            bridge,
            registry: None,
            channels: HashMap::new(),
        }));
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let addr = ChannelRegistry {
            channels: channels.clone(),
        }
        .start();
        channels.borrow_mut().registry = Some(RegistryLink {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            dispatch: addr.clone().recipient(),
            ready: addr.clone().recipient(),
        });
        LocalRegistry { channels, addr }
    }

    /// The registry actor, for messages from other threads.
    pub fn addr(&self) -> &Addr<ChannelRegistry> {
        &self.addr
    }

    /// Subscribes connection `id`, writing to `outlet`, to `channel`: once the bridge
    /// says the hub subscription is in effect (a round trip, when it is already), it gets
    /// `subscribed <channel>` and then the channel's messages, and `settled` hears
    /// [`SubscriptionSettled`].
    pub fn join(
        &self,
        channel: Arc<str>,
        id: &ConnectionId,
        outlet: &Outlet,
        settled: &Recipient<SubscriptionSettled>,
    ) {
        self.channels
            .borrow_mut()
            .join(channel, id, outlet, settled);
    }

    /// Unsubscribes `outlet` from `channel`; no frame of it reaches the outlet after
    /// this returns.
    pub fn leave(&self, channel: &str, outlet: &Outlet) {
        self.channels.borrow_mut().leave(channel, outlet);
    }

    /// Unsubscribes `outlet` from every channel in `channels` (a connection that is gone).
    pub fn leave_all<'a>(&self, channels: impl IntoIterator<Item = &'a Arc<str>>, outlet: &Outlet) {
        let mut registry = self.channels.borrow_mut();
        for channel in channels {
            registry.leave(channel, outlet);
        }
    }
}

impl Handler<ChannelReady> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, ready: ChannelReady, _: &mut Context<Self>) {
        let mut registry = self.channels.borrow_mut();
        let Some(subscribers) = registry.channels.get_mut(&ready.channel) else {
            return;
        };
        match &ready.result {
            Ok(()) => {
                let frame = subscribed_frame(&ready.channel);
                for key in std::mem::take(&mut subscribers.unconfirmed) {
                    if let Some(slot) = subscribers.index.get(&key) {
                        deliver(
                            &subscribers.members[*slot],
                            &subscribers.ids[*slot],
                            frame.clone(),
                        );
                    }
                }
                for waiting in std::mem::take(&mut subscribers.waiting) {
                    deliver(&waiting.outlet, &waiting.id, frame.clone());
                    waiting
                        .settled
                        .do_send(SubscriptionSettled(ready.channel.clone()));
                    subscribers.insert(waiting.id, waiting.outlet);
                }
            }
            // The subscription stays recorded and this server's messages flow: the bridge
            // asks again, and the hub resubscribes when it is back; `subscribed` comes
            // then. Those already told are not told again.
            Err(err) => {
                let frame = error_frame(
                    &ErrorCode::Unavailable,
                    &format!(
                        "subscription recorded, but the hub failed: {err}; messages from \
                         this server only until it is back"
                    ),
                    Some(&ready.channel),
                );
                for waiting in std::mem::take(&mut subscribers.waiting) {
                    deliver(&waiting.outlet, &waiting.id, frame.clone());
                    // Failed with local delivery going on: the connection's own publishes
                    // need not wait for it any more.
                    waiting
                        .settled
                        .do_send(SubscriptionSettled(ready.channel.clone()));
                    subscribers.unconfirmed.push(waiting.outlet.key());
                    subscribers.insert(waiting.id, waiting.outlet);
                }
            }
        }
    }
}

impl Handler<Dispatch> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, dispatch: Dispatch, _: &mut Context<Self>) {
        let registry = self.channels.borrow();
        let Some(subscribers) = registry.channels.get(&dispatch.channel) else {
            return;
        };
        for (outlet, id) in subscribers.members.iter().zip(&subscribers.ids) {
            deliver(outlet, id, dispatch.frame.clone());
        }
    }
}

/// Which local connections are subscribed to a channel.
#[derive(Message)]
#[rtype(result = "Vec<ConnectionId>")]
pub struct ListSubscribers(pub Arc<str>);

impl Handler<ListSubscribers> for ChannelRegistry {
    type Result = Vec<ConnectionId>;

    fn handle(&mut self, list: ListSubscribers, _: &mut Context<Self>) -> Vec<ConnectionId> {
        self.channels
            .borrow()
            .channels
            .get(&list.0)
            .map(|subscribers| {
                let waiting = subscribers.waiting.iter().map(|w| w.id.clone());
                subscribers.ids.iter().cloned().chain(waiting).collect()
            })
            .unwrap_or_default()
    }
}

/// Writes a frame to a subscriber. A client too slow to take it has its outlet closed
/// (4001) by the outlet itself; that is said here, once (a closed outlet refuses quietly).
fn deliver(outlet: &Outlet, id: &ConnectionId, frame: ByteString) {
    if let Err(TransportError::Full) = outlet.send(frame) {
        log::warn!("connection {id}: outbound queue full, closing as a slow consumer");
    }
}
