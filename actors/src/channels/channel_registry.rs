//! The channel registry: channel → the local connections subscribed to it.
//!
//! There is one registry per thread that holds connections (one per actix-web worker),
//! so a message for 10,000 subscribers is fanned out by every thread at once, each to its
//! own connections, never funnelled through one. A registry tells the
//! [`HubBridge`] when a channel gains its first local subscriber
//! ([`Activate`]) and loses its last ([`Deactivate`]); the bridge keeps the process's hub
//! subscription reference-counted over all registries and server-side listeners.
//!
//! A registry writes each message straight to the outlet of each subscriber (the
//! connection's transport, shared with it), not through the connection actor's mailbox:
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

/// A member waiting for `subscribed <channel>`.
struct Waiting {
    key: usize,
    /// Whether it was told that the hub failed (it hears `subscribed` when the hub is
    /// back, the error only once).
    told: bool,
    settled: Recipient<SubscriptionSettled>,
}

/// The local subscribers of one channel. A `Vec` so that fan-out is a straight walk;
/// `index` finds a member's slot for O(1) removal (`swap_remove`).
#[derive(Default)]
struct Subscribers {
    members: Vec<Outlet>,
    /// The connection of each member, slot for slot.
    ids: Vec<ConnectionId>,
    index: HashMap<usize, usize>,
    /// Whether the hub subscription is in effect.
    ready: bool,
    /// Members that still wait for `subscribed <channel>`.
    waiting: Vec<Waiting>,
}

impl Subscribers {
    fn insert(&mut self, id: ConnectionId, outlet: Outlet) {
        self.index.insert(outlet.key(), self.members.len());
        self.members.push(outlet);
        self.ids.push(id);
    }

    fn remove(&mut self, key: usize) {
        let Some(slot) = self.index.remove(&key) else {
            return;
        };
        self.members.swap_remove(slot);
        self.ids.swap_remove(slot);
        if let Some(moved) = self.members.get(slot) {
            self.index.insert(moved.key(), slot);
        }
        self.waiting.retain(|waiting| waiting.key != key);
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
    /// Returns whether the subscription is in effect already; if not, `settled` hears
    /// [`SubscriptionSettled`] when it is.
    fn join(
        &mut self,
        channel: Arc<str>,
        id: &ConnectionId,
        outlet: &Outlet,
        settled: &Recipient<SubscriptionSettled>,
    ) -> bool {
        let subscribers = match self.channels.get_mut(&channel) {
            Some(subscribers) => subscribers,
            None => {
                if let Some(registry) = &self.registry {
                    self.bridge.do_send(Activate {
                        channel: channel.clone(),
                        registry: registry.clone(),
                    });
                }
                self.channels.entry(channel.clone()).or_default()
            }
        };
        if subscribers.index.contains_key(&outlet.key()) {
            return subscribers.ready
                || subscribers
                    .waiting
                    .iter()
                    .all(|waiting| waiting.key != outlet.key());
        }
        let ready = subscribers.ready;
        if ready {
            deliver(outlet, id, subscribed_frame(&channel));
        } else {
            subscribers.waiting.push(Waiting {
                key: outlet.key(),
                told: false,
                settled: settled.clone(),
            });
        }
        subscribers.insert(id.clone(), outlet.clone());
        ready
    }

    fn leave(&mut self, channel: &str, outlet: &Outlet) {
        let Some(subscribers) = self.channels.get_mut(channel) else {
            return;
        };
        subscribers.remove(outlet.key());
        if subscribers.members.is_empty() {
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

    /// Subscribes connection `id`, writing to `outlet`, to `channel`: it gets
    /// `subscribed <channel>` once the hub subscription is in effect (at once, if it is
    /// already), then the channel's messages. Answers whether the subscription is in
    /// effect already (else `settled` hears [`SubscriptionSettled`] when it is).
    pub fn join(
        &self,
        channel: Arc<str>,
        id: &ConnectionId,
        outlet: &Outlet,
        settled: &Recipient<SubscriptionSettled>,
    ) -> bool {
        self.channels
            .borrow_mut()
            .join(channel, id, outlet, settled)
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
        let failed = ready.result.is_err();
        let frame = match &ready.result {
            Ok(()) => {
                subscribers.ready = true;
                subscribed_frame(&ready.channel)
            }
            // The subscription stays recorded (and local messages flow): the bridge asks
            // again, and the hub resubscribes when it is back; `subscribed` comes then.
            Err(err) => error_frame(
                &ErrorCode::Unavailable,
                &format!(
                    "subscription recorded, but the hub failed: {err}; messages from \
                         this server only until it is back"
                ),
                Some(&ready.channel),
            ),
        };
        let waiting = std::mem::take(&mut subscribers.waiting);
        for mut member in waiting {
            if !(member.told && failed) {
                if let Some(slot) = subscribers.index.get(&member.key) {
                    deliver(
                        &subscribers.members[*slot],
                        &subscribers.ids[*slot],
                        frame.clone(),
                    );
                }
                // In effect, or failed with local delivery going on: either way the
                // connection's own publishes need not wait for it any more.
                member
                    .settled
                    .do_send(SubscriptionSettled(ready.channel.clone()));
            }
            if failed {
                // Told of the failure, it still waits for `subscribed`.
                member.told = true;
                subscribers.waiting.push(member);
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
            .map(|subscribers| subscribers.ids.clone())
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
