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
//! what comes from other threads: the bridge's [`Dispatch`], [`Gap`] and
//! [`ChannelReady`], and [`ListSubscribers`].
//!
//! In a channel with history a member gets `channel` frames ([`Delivery::Plain`]) or
//! `pub` frames with offsets ([`Delivery::Positioned`]). A connection that reads the
//! channel's past first (recovery, the latest value) joins with [`Join::Recover`]: its
//! live messages are held (bounded in bytes) while it reads, and it becomes a member
//! when it says how far the past it wrote goes ([`LocalRegistry::finish_recovery`]),
//! skipping what it already has.

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
use crate::hub::bridge::{
    Activate, ChannelReady, Deactivate, Dispatch, Gap, HubBridge, JoinLeave, RegistryLink,
};
use crate::protocol::{error_frame, presence_event_frame, subscribed_frame};
use crate::transport::TransportError;

/// To a connection: its subscription to a channel is in effect (or failed with local
/// delivery going on), so publishes it held back for it may go.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionSettled(pub Arc<str>);

/// To a connection that joined with [`Join::Recover`]: the channel's hub subscription is
/// in effect (or the hub failed), and live messages are held for it from now on: read
/// history, write what it missed, then [`LocalRegistry::finish_recovery`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadyToRecover(pub Arc<str>);

/// How a member gets a channel's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// `channel <name> <payload>`, as jii's clients expect.
    Plain,
    /// `pub <name> <offset> <payload>` (and `gap` frames), for a subscription that asked
    /// for positions (a channel with history).
    Positioned,
}

/// How a connection joins a channel.
#[derive(Clone)]
pub enum Join {
    /// A member as soon as the hub subscription is in effect, told `subscribed <channel>`.
    Now(Delivery),
    /// Told [`ReadyToRecover`] instead when the hub subscription is in effect; the live
    /// messages are held for it until it has written the past (recovery, the latest
    /// value) and called [`LocalRegistry::finish_recovery`].
    Recover(Delivery, Recipient<ReadyToRecover>),
}

/// A connection that joined a channel and waits for the hub's answer: it joins the
/// members (and gets the channel's messages) once the answer comes, so that nothing of
/// the channel reaches it before `subscribed`.
struct Waiting {
    id: ConnectionId,
    outlet: Outlet,
    settled: Recipient<SubscriptionSettled>,
    join: Join,
}

/// What a recovering connection is held, in order.
enum Held {
    /// A message with its offset, as it would have been written.
    Message(u64, ByteString),
    /// A `gap` frame, for the position it jumped to.
    Gap(u64, ByteString),
}

/// A connection reading the past of a channel: live messages wait here, bounded in
/// bytes; beyond the bound it is closed as a slow consumer when it finishes.
struct Recovering {
    id: ConnectionId,
    outlet: Outlet,
    delivery: Delivery,
    settled: Recipient<SubscriptionSettled>,
    held: Vec<Held>,
    bytes: usize,
    overflowed: bool,
}

/// A connection that recovered up to `after`, whose live messages up to that offset may
/// still be on their way (the history read and the hub's delivery travel apart): those
/// are skipped; the first one past it makes it an ordinary member.
struct CatchingUp {
    id: ConnectionId,
    outlet: Outlet,
    delivery: Delivery,
    after: u64,
}

/// Members of one kind of delivery. A `Vec` so that fan-out is a straight walk; `index`
/// finds a member's slot for O(1) removal (`swap_remove`).
#[derive(Default)]
struct Group {
    members: Vec<Outlet>,
    /// The connection of each member, slot for slot.
    ids: Vec<ConnectionId>,
    index: HashMap<usize, usize>,
}

impl Group {
    fn insert(&mut self, id: ConnectionId, outlet: Outlet) {
        self.index.insert(outlet.key(), self.members.len());
        self.members.push(outlet);
        self.ids.push(id);
    }

    fn remove(&mut self, key: usize) -> bool {
        let Some(slot) = self.index.remove(&key) else {
            return false;
        };
        self.members.swap_remove(slot);
        self.ids.swap_remove(slot);
        if let Some(moved) = self.members.get(slot) {
            self.index.insert(moved.key(), slot);
        }
        true
    }

    fn get(&self, key: usize) -> Option<(&Outlet, &ConnectionId)> {
        let slot = *self.index.get(&key)?;
        Some((&self.members[slot], &self.ids[slot]))
    }
}

/// Members that asked for join and leave events (`{"joinLeave":true}`), with their
/// connection ids indexed, to leave a member's own entry out of what it is sent.
#[derive(Default)]
struct Listeners {
    group: Group,
    /// connection id → outlet key.
    by_id: HashMap<Arc<str>, usize>,
}

impl Listeners {
    fn insert(&mut self, id: ConnectionId, outlet: Outlet) {
        if self.group.index.contains_key(&outlet.key()) {
            return;
        }
        self.by_id.insert(Arc::from(id.as_str()), outlet.key());
        self.group.insert(id, outlet);
    }

    fn remove(&mut self, key: usize) {
        if let Some((_, id)) = self.group.get(key) {
            let id = id.as_str().to_owned();
            self.by_id.remove(id.as_str());
            self.group.remove(key);
        }
    }
}

/// The local subscribers of one channel.
///
/// Whether the channel's hub subscription is in effect is the bridge's to know (one
/// place): every join asks it ([`Activate`]) and hears [`ChannelReady`], at once when the
/// subscription is in effect already.
#[derive(Default)]
struct Subscribers {
    plain: Group,
    positioned: Group,
    /// Joined, waiting for the bridge's answer.
    waiting: Vec<Waiting>,
    /// Reading the channel's past, their live messages held.
    recovering: Vec<Recovering>,
    /// Recovered, skipping live messages they already have.
    catching_up: Vec<CatchingUp>,
    /// Members told that the hub failed (they get this server's messages meanwhile),
    /// still to be told `subscribed` when it is back.
    unconfirmed: Vec<usize>,
    /// Members that get join and leave events.
    listeners: Listeners,
}

impl Subscribers {
    fn insert(&mut self, id: ConnectionId, outlet: Outlet, delivery: Delivery) {
        match delivery {
            Delivery::Plain => self.plain.insert(id, outlet),
            Delivery::Positioned => self.positioned.insert(id, outlet),
        }
    }

    fn remove(&mut self, key: usize) {
        self.waiting.retain(|waiting| waiting.outlet.key() != key);
        self.recovering
            .retain(|recovering| recovering.outlet.key() != key);
        self.unconfirmed.retain(|unconfirmed| *unconfirmed != key);
        self.listeners.remove(key);
        if !self.plain.remove(key) {
            self.positioned.remove(key);
        }
    }

    fn member(&self, key: usize) -> Option<(&Outlet, &ConnectionId)> {
        self.plain.get(key).or_else(|| self.positioned.get(key))
    }

    fn has(&self, key: usize) -> bool {
        self.member(key).is_some()
            || self.waiting.iter().any(|w| w.outlet.key() == key)
            || self.recovering.iter().any(|r| r.outlet.key() == key)
            || self.catching_up.iter().any(|c| c.outlet.key() == key)
    }

    fn is_empty(&self) -> bool {
        self.plain.members.is_empty()
            && self.positioned.members.is_empty()
            && self.waiting.is_empty()
            && self.recovering.is_empty()
            && self.catching_up.is_empty()
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
    /// The most bytes of live messages held for one recovering connection.
    max_held_bytes: usize,
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
        join: Join,
    ) {
        let subscribers = self.channels.entry(channel.clone()).or_default();
        if subscribers.has(outlet.key()) {
            return;
        }
        subscribers.waiting.push(Waiting {
            id: id.clone(),
            outlet: outlet.clone(),
            settled: settled.clone(),
            join,
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

    /// A recovering connection wrote the past up to `after`: the messages held for it
    /// that come later go out now, in order, and it becomes a member.
    fn finish_recovery(&mut self, channel: &str, outlet: &Outlet, after: u64) {
        let Some(subscribers) = self.channels.get_mut(channel) else {
            return;
        };
        let Some(slot) = subscribers
            .recovering
            .iter()
            .position(|r| r.outlet.key() == outlet.key())
        else {
            return;
        };
        let recovering = subscribers.recovering.swap_remove(slot);
        if recovering.overflowed {
            log::warn!(
                "connection {}: more arrived on `{channel}` while it recovered than it may \
                 be held; closing it as a slow consumer",
                recovering.id
            );
            recovering
                .outlet
                .close(crate::codes::CloseCode::SlowConsumer);
            return;
        }
        let mut caught_up = false;
        for held in recovering.held {
            match held {
                Held::Message(offset, frame) if offset > after => {
                    caught_up = true;
                    deliver(&recovering.outlet, &recovering.id, frame)
                }
                Held::Gap(offset, frame) if offset >= after => {
                    caught_up = true;
                    deliver(&recovering.outlet, &recovering.id, frame)
                }
                _ => {}
            }
        }
        recovering
            .settled
            .do_send(SubscriptionSettled(Arc::from(channel)));
        if caught_up {
            subscribers.insert(recovering.id, recovering.outlet, recovering.delivery);
        } else {
            subscribers.catching_up.push(CatchingUp {
                id: recovering.id,
                outlet: recovering.outlet,
                delivery: recovering.delivery,
                after,
            });
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
    /// Starts a registry on the current thread, reporting channel activity to `bridge`;
    /// a recovering connection is held at most `max_held_bytes` of live messages.
    pub fn start(bridge: Addr<HubBridge>, max_held_bytes: usize) -> LocalRegistry {
        let channels = Rc::new(RefCell::new(Channels {
            bridge,
            registry: None,
            channels: HashMap::new(),
            max_held_bytes,
        }));
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let addr = ChannelRegistry {
            channels: channels.clone(),
        }
        .start();
        channels.borrow_mut().registry = Some(RegistryLink {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            dispatch: addr.clone().recipient(),
            gap: addr.clone().recipient(),
            ready: addr.clone().recipient(),
            join_leave: addr.clone().recipient(),
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
    /// [`SubscriptionSettled`]. With [`Join::Recover`], see there.
    pub fn join(
        &self,
        channel: Arc<str>,
        id: &ConnectionId,
        outlet: &Outlet,
        settled: &Recipient<SubscriptionSettled>,
        join: Join,
    ) {
        self.channels
            .borrow_mut()
            .join(channel, id, outlet, settled, join);
    }

    /// Ends the recovery of `outlet` on `channel` (see [`Join::Recover`]): the caller has
    /// written everything up to offset `after`; what was held for it beyond that goes out
    /// now, and the live messages follow.
    pub fn finish_recovery(&self, channel: &str, outlet: &Outlet, after: u64) {
        self.channels
            .borrow_mut()
            .finish_recovery(channel, outlet, after);
    }

    /// Sends `outlet`, a member of `channel`, the channel's join and leave events from now
    /// on (not about its own connection `id`), until it leaves.
    pub fn listen_join_leave(&self, channel: &str, id: &ConnectionId, outlet: &Outlet) {
        let mut registry = self.channels.borrow_mut();
        let Some(subscribers) = registry.channels.get_mut(channel) else {
            return;
        };
        // A member, or one that recovered and still skips what it already has.
        if subscribers.has(outlet.key()) {
            subscribers.listeners.insert(id.clone(), outlet.clone());
        }
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
        let frame = match &ready.result {
            Ok(()) => {
                let frame = subscribed_frame(&ready.channel);
                for key in std::mem::take(&mut subscribers.unconfirmed) {
                    if let Some((outlet, id)) = subscribers.member(key) {
                        deliver(outlet, id, frame.clone());
                    }
                }
                frame
            }
            // The subscription stays recorded and this server's messages flow: the bridge
            // asks again, and the hub resubscribes when it is back; `subscribed` comes
            // then. Those already told are not told again.
            Err(err) => error_frame(
                &ErrorCode::Unavailable,
                &format!(
                    "subscription recorded, but the hub failed: {err}; messages from \
                     this server only until it is back"
                ),
                Some(&ready.channel),
            ),
        };
        for waiting in std::mem::take(&mut subscribers.waiting) {
            let delivery = match waiting.join {
                Join::Recover(delivery, recover) => {
                    // Its own `subscribed` comes after the past it reads now.
                    recover.do_send(ReadyToRecover(ready.channel.clone()));
                    subscribers.recovering.push(Recovering {
                        id: waiting.id,
                        outlet: waiting.outlet,
                        delivery,
                        settled: waiting.settled,
                        held: Vec::new(),
                        bytes: 0,
                        overflowed: false,
                    });
                    continue;
                }
                Join::Now(delivery) => delivery,
            };
            deliver(&waiting.outlet, &waiting.id, frame.clone());
            // In effect, or failed with local delivery going on: the connection's own
            // publishes need not wait for it any more.
            waiting
                .settled
                .do_send(SubscriptionSettled(ready.channel.clone()));
            if ready.result.is_err() {
                subscribers.unconfirmed.push(waiting.outlet.key());
            }
            subscribers.insert(waiting.id, waiting.outlet, delivery);
        }
    }
}

impl Handler<Dispatch> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, dispatch: Dispatch, _: &mut Context<Self>) {
        let mut registry = self.channels.borrow_mut();
        let max_held = registry.max_held_bytes;
        let Some(subscribers) = registry.channels.get_mut(&dispatch.channel) else {
            return;
        };
        let group = &subscribers.plain;
        for (outlet, id) in group.members.iter().zip(&group.ids) {
            deliver(outlet, id, dispatch.frame.clone());
        }
        let positioned = dispatch.positioned.as_ref();
        let frame = positioned.map_or(&dispatch.frame, |(_, frame)| frame);
        let group = &subscribers.positioned;
        for (outlet, id) in group.members.iter().zip(&group.ids) {
            deliver(outlet, id, frame.clone());
        }
        crate::metrics::METRICS.delivered(
            subscribers.plain.ids.len() + group.ids.len(),
            subscribers.plain.ids.len() * dispatch.frame.len() + group.ids.len() * frame.len(),
        );
        let offset = positioned.map_or(0, |(offset, _)| *offset);
        if !subscribers.catching_up.is_empty() {
            for catching_up in std::mem::take(&mut subscribers.catching_up) {
                if offset <= catching_up.after {
                    subscribers.catching_up.push(catching_up);
                    continue;
                }
                let frame = match catching_up.delivery {
                    Delivery::Plain => dispatch.frame.clone(),
                    Delivery::Positioned => frame.clone(),
                };
                deliver(&catching_up.outlet, &catching_up.id, frame);
                subscribers.insert(catching_up.id, catching_up.outlet, catching_up.delivery);
            }
        }
        for recovering in &mut subscribers.recovering {
            let frame = match recovering.delivery {
                Delivery::Plain => dispatch.frame.clone(),
                Delivery::Positioned => frame.clone(),
            };
            recovering.bytes += frame.len();
            if recovering.bytes > max_held {
                recovering.overflowed = true;
                recovering.held.clear();
            } else if !recovering.overflowed {
                recovering.held.push(Held::Message(offset, frame));
            }
        }
    }
}

impl Handler<Gap> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, gap: Gap, _: &mut Context<Self>) {
        let mut registry = self.channels.borrow_mut();
        let Some(subscribers) = registry.channels.get_mut(&gap.channel) else {
            return;
        };
        let group = &subscribers.positioned;
        for (outlet, id) in group.members.iter().zip(&group.ids) {
            deliver(outlet, id, gap.frame.clone());
        }
        for recovering in &mut subscribers.recovering {
            if recovering.delivery == Delivery::Positioned && !recovering.overflowed {
                recovering
                    .held
                    .push(Held::Gap(gap.offset, gap.frame.clone()));
            }
        }
    }
}

mod census;
pub use census::ListChannels;

impl Handler<JoinLeave> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, events: JoinLeave, _: &mut Context<Self>) {
        let registry = self.channels.borrow();
        let Some(subscribers) = registry.channels.get(&events.channel) else {
            return;
        };
        let listeners = &subscribers.listeners;
        if listeners.group.members.is_empty() {
            return;
        }
        for (kind, announcement) in [("leave", &events.leave), ("join", &events.join)] {
            let Some(announcement) = announcement else {
                continue;
            };
            // Listeners whose own entry is in the frame get it without that entry.
            let own: Vec<usize> = announcement
                .entries
                .iter()
                .filter_map(|(connection, _)| listeners.by_id.get(connection.as_str()).copied())
                .collect();
            let group = &listeners.group;
            for (outlet, id) in group.members.iter().zip(&group.ids) {
                if !own.contains(&outlet.key()) {
                    deliver(outlet, id, announcement.frame.clone());
                    continue;
                }
                let mut others = announcement
                    .entries
                    .iter()
                    .filter(|(connection, _)| connection.as_str() != id.as_str())
                    .map(|(_, entry)| entry.as_str())
                    .peekable();
                if others.peek().is_some() {
                    deliver(
                        outlet,
                        id,
                        presence_event_frame(kind, &events.channel, others),
                    );
                }
            }
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
                let recovering = subscribers.recovering.iter().map(|r| r.id.clone());
                let catching_up = subscribers.catching_up.iter().map(|c| c.id.clone());
                subscribers
                    .plain
                    .ids
                    .iter()
                    .chain(&subscribers.positioned.ids)
                    .cloned()
                    .chain(waiting)
                    .chain(recovering)
                    .chain(catching_up)
                    .collect()
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
