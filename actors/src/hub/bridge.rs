//! The hub bridge: the process's one link to the hub.
//!
//! Outbound, it keeps the process's hub subscriptions reference-counted: a channel is
//! subscribed when its first local subscriber (in any thread's
//! [`ChannelRegistry`](crate::ChannelRegistry)) or server-side listener appears, and
//! unsubscribed when the last goes. Inbound, it routes what the hub delivers: channel
//! messages to the registries and listeners of that channel (the frame formatted once),
//! messages for a connection to the process's [`Directory`](crate::Directory), and
//! "queue updated" notices to the [`WorkerSupervisor`](crate::WorkerSupervisor). It holds
//! the others as `Recipient`s of the messages defined here, so it imports none of them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytestring::ByteString;
use futures::channel::oneshot;

use bytes::Bytes;

mod positions;

use crate::channels::namespaces::Namespaces;
use crate::hub::history::{decode_positioned, Position};
use crate::hub::presence::decode_events;
use crate::hub::process_message::{ProcessMessage, UserMessage};
use crate::hub::{Hub, HubChannel, HubError, HubMessage, HubNames};
use crate::protocol::{channel_frame, presence_event_frame, pub_frame};

/// A message on a channel, for server-side listeners (see
/// [`Node::on_channel`](crate::Node::on_channel)).
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct ChannelMessage {
    /// Channel name.
    pub channel: Arc<str>,
    /// The payload as published.
    pub payload: ByteString,
}

/// The handle of a server-side channel listener, to remove it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u64);

/// To the workers: a call for `route` was queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueueUpdated {
    /// The route of the queued call.
    pub route: String,
}

/// To a registry: a message for every local subscriber of `channel`. The frame is
/// formatted once and shared by all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispatch {
    /// Channel name.
    pub channel: Arc<str>,
    /// The whole `channel <name> <payload>` frame.
    pub frame: ByteString,
    /// For a channel with history: the message's offset and its `pub <name> <offset>
    /// <payload>` frame, for the subscribers that asked for positions.
    pub positioned: Option<(u64, ByteString)>,
}

/// To a registry: publications of a channel with history were lost (history could not
/// fill the gap): its subscribers with positions get `frame`, a `gap <channel> {…}` that
/// says the new position.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Gap {
    /// Channel name.
    pub channel: Arc<str>,
    /// The `gap` frame.
    pub frame: ByteString,
    /// The offset the position jumped to: messages up to it are not coming.
    pub offset: u64,
}

/// Entries that joined or left a channel, in one `join` or `leave` frame.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// The whole `join <channel> [<entry>,…]` (or `leave …`) frame.
    pub frame: ByteString,
    /// Its entries: (connection id, entry JSON), so that a frame for a subscriber whose
    /// own entry is among them can be made without it.
    pub entries: Arc<Vec<(String, String)>>,
}

/// To a registry: join and leave events of a channel with presence, for the members that
/// asked for them. Leaves come before joins.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinLeave {
    /// Channel name.
    pub channel: Arc<str>,
    /// Entries that left.
    pub leave: Option<Announcement>,
    /// Entries that joined.
    pub join: Option<Announcement>,
}

/// To a registry: the hub subscription of `channel` is in effect (or failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelReady {
    /// Channel name.
    pub channel: Arc<str>,
    /// The hub's answer.
    pub result: Result<(), HubError>,
}

/// How the bridge reaches one thread's registry.
#[derive(Clone)]
pub struct RegistryLink {
    /// Unique per registry, to tell them apart.
    pub id: u64,
    /// Where its channel messages go.
    pub dispatch: Recipient<Dispatch>,
    /// Where it hears of lost publications.
    pub gap: Recipient<Gap>,
    /// Where it hears that a subscription is in effect.
    pub ready: Recipient<ChannelReady>,
    /// Where join and leave events go.
    pub join_leave: Recipient<JoinLeave>,
}

/// Who is interested in one hub channel on this process.
struct ChannelRoute {
    registries: Vec<RegistryLink>,
    listeners: Vec<(ListenerId, Recipient<ChannelMessage>)>,
    /// Whether the hub subscription is in effect.
    ready: bool,
    /// Whether the hub refused it and the bridge keeps asking (logged once, not per try).
    retrying: bool,
    /// Listeners added before it was, waiting to hear that it is.
    waiting: Vec<oneshot::Sender<Result<(), HubError>>>,
    /// For a channel with history: the position of the last message delivered.
    position: Option<Position>,
    /// Messages held while a gap before them is read from history, in order.
    filling: Option<Vec<(Position, Bytes)>>,
    /// Their payload bytes (at most `MAX_HELD_BYTES`, see `bridge/positions.rs`).
    filling_bytes: usize,
}

impl ChannelRoute {
    fn is_unused(&self) -> bool {
        self.registries.is_empty() && self.listeners.is_empty()
    }
}

/// The process's link to the hub.
pub struct HubBridge {
    process_id: String,
    names: HubNames,
    hub: Arc<dyn Hub>,
    /// Where messages for this process's connections go (its directory).
    connections: Recipient<ProcessMessage>,
    /// Where messages for users go (its directory too).
    users: Recipient<UserMessage>,
    listen_actions: bool,
    retry: Duration,
    supervisor: Option<Recipient<QueueUpdated>>,
    routes: HashMap<Arc<str>, ChannelRoute>,
    /// Which channels keep history (and so come on their positioned hub channel).
    namespaces: Namespaces,
}

/// Where a bridge hands what is for this process's connections (its directory).
pub struct ConnectionsLink {
    /// Messages for one connection.
    pub messages: Recipient<ProcessMessage>,
    /// Messages for a user's connections.
    pub users: Recipient<UserMessage>,
}

impl HubBridge {
    /// A bridge for process `process_id`, handing messages for its connections to
    /// `connections`; [`Node::start`](crate::Node::start) makes it. A channel
    /// subscription the hub refused is tried again every `retry`.
    pub fn new(
        process_id: String,
        names: HubNames,
        hub: Arc<dyn Hub>,
        connections: ConnectionsLink,
        namespaces: Namespaces,
        listen_actions: bool,
        retry: Duration,
    ) -> HubBridge {
        HubBridge {
            process_id,
            names,
            hub,
            connections: connections.messages,
            users: connections.users,
            listen_actions,
            retry,
            supervisor: None,
            routes: HashMap::new(),
            namespaces,
        }
    }

    /// The hub channel a client channel comes on: its positioned one when its namespace
    /// keeps history.
    fn hub_channel(&self, channel: &str) -> String {
        match self.namespaces.of(channel).history {
            Some(_) => self.names.history(channel).channel,
            None => self.names.channel(channel),
        }
    }

    /// Makes sure `channel` has a route, subscribing in the hub when it is new.
    fn route_for(&mut self, channel: &Arc<str>, ctx: &mut Context<Self>) -> &mut ChannelRoute {
        if !self.routes.contains_key(channel) {
            self.subscribe(channel.clone(), ctx);
            log::debug!("hub: subscribing to channel `{channel}`");
        }
        self.routes
            .entry(channel.clone())
            .or_insert_with(|| ChannelRoute {
                registries: Vec::new(),
                listeners: Vec::new(),
                ready: false,
                retrying: false,
                waiting: Vec::new(),
                position: None,
                filling: None,
                filling_bytes: 0,
            })
    }

    /// The hub channel of `channel`'s join and leave events, when its namespace has them.
    fn events_channel(&self, channel: &str) -> Option<String> {
        self.namespaces
            .of(channel)
            .join_leave
            .then(|| self.names.presence(channel).events)
    }

    /// Asks the hub to subscribe `channel` (its join and leave events first, where it has
    /// them: in effect by the time the channel is); the answer goes to
    /// [`Self::subscribed`].
    fn subscribe(&mut self, channel: Arc<str>, ctx: &mut Context<Self>) {
        let events = self
            .events_channel(&channel)
            .map(|events| self.hub.subscribe(&events));
        let subscribed = self.hub.subscribe(&self.hub_channel(&channel));
        let both = async move {
            let events = match events {
                Some(events) => events.await,
                None => Ok(()),
            };
            subscribed.await.and(events)
        };
        ctx.spawn(
            both.into_actor(self)
                .map(move |result, bridge, ctx| bridge.subscribed(&channel, result, ctx)),
        );
    }

    /// The hub answered a subscribe: tell whoever waits. A refusal (the hub is down) is
    /// tried again after a while, so that the channel's subscribers hear `subscribed`
    /// once it is back (the hub itself resubscribes on reconnection; this is for them).
    fn subscribed(
        &mut self,
        channel: &Arc<str>,
        result: Result<(), HubError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(route) = self.routes.get_mut(channel) else {
            return; // unsubscribed meanwhile
        };
        match &result {
            Ok(()) => {
                route.ready = true;
                if std::mem::take(&mut route.retrying) {
                    log::debug!("hub: channel `{channel}` subscribed at last");
                }
            }
            Err(err) => {
                if !std::mem::replace(&mut route.retrying, true) {
                    log::warn!(
                        "hub: cannot subscribe to channel `{channel}` now: {err}; trying again \
                         every {} ms",
                        self.retry.as_millis()
                    );
                }
                let name = channel.clone();
                ctx.run_later(self.retry, move |bridge, ctx| {
                    if bridge.routes.get(&name).is_some_and(|route| !route.ready) {
                        bridge.subscribe(name, ctx);
                    }
                });
            }
        }
        for registry in &route.registries {
            registry.ready.do_send(ChannelReady {
                channel: channel.clone(),
                result: result.clone(),
            });
        }
        for waiter in route.waiting.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }

    /// Drops the route when nobody uses it any more, unsubscribing in the hub.
    fn release(&mut self, channel: &Arc<str>, ctx: &mut Context<Self>) {
        if self
            .routes
            .get(channel)
            .is_some_and(ChannelRoute::is_unused)
        {
            self.routes.remove(channel);
            log::debug!("hub: unsubscribing from channel `{channel}`");
            if let Some(events) = self.events_channel(channel) {
                drop(self.hub.unsubscribe(&events));
            }
            let unsubscribed = self.hub.unsubscribe(&self.hub_channel(channel));
            let name = channel.clone();
            ctx.spawn(unsubscribed.into_actor(self).map(move |result, _, _| {
                if let Err(err) = result {
                    log::warn!("hub: cannot unsubscribe from channel `{name}`: {err}");
                }
            }));
        }
    }

    fn deliver_channel(&self, name: &str, payload: Bytes, position: Option<u64>) {
        let Some((channel, route)) = self.routes.get_key_value(name) else {
            return;
        };
        let Ok(payload) = ByteString::try_from(payload) else {
            log::warn!("hub: dropped a message on channel `{name}` that is not UTF-8");
            return;
        };
        if !route.registries.is_empty() {
            let frame = channel_frame(channel, &payload);
            let positioned = position.map(|offset| (offset, pub_frame(channel, offset, &payload)));
            for registry in &route.registries {
                registry.dispatch.do_send(Dispatch {
                    channel: channel.clone(),
                    frame: frame.clone(),
                    positioned: positioned.clone(),
                });
            }
        }
        for (_, listener) in &route.listeners {
            listener.do_send(ChannelMessage {
                channel: channel.clone(),
                payload: payload.clone(),
            });
        }
    }

    /// Hands join and leave events to the registries of the channel, each kind as one
    /// frame made here once.
    fn deliver_presence_events(&self, name: &str, payload: &[u8]) {
        let Some((channel, route)) = self.routes.get_key_value(name) else {
            return;
        };
        let Some(events) = decode_events(payload) else {
            log::warn!("hub: dropped unreadable join/leave events of `{name}`");
            return;
        };
        let announce = |kind: &str, entries: Vec<(String, String)>| {
            (!entries.is_empty()).then(|| Announcement {
                frame: presence_event_frame(kind, channel, entries.iter().map(|(_, e)| e.as_str())),
                entries: Arc::new(entries),
            })
        };
        let (leave, join) = (
            announce("leave", events.leave),
            announce("join", events.join),
        );
        if leave.is_none() && join.is_none() {
            return;
        }
        for registry in &route.registries {
            registry.join_leave.do_send(JoinLeave {
                channel: channel.clone(),
                leave: leave.clone(),
                join: join.clone(),
            });
        }
    }
}

impl Actor for HubBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let started = self.hub.start(ctx.address().recipient());
        let own = self.hub.subscribe(&self.names.process(&self.process_id));
        let users = self.hub.subscribe(self.names.users());
        let actions = self
            .listen_actions
            .then(|| self.hub.subscribe(self.names.actions()));
        let hub = self.hub.name();
        // Nothing else is handled until the hub is up, so nothing arrives unrouted.
        ctx.wait(
            async move {
                for (what, result) in [
                    ("start", Some(started.await)),
                    ("subscribe to the process channel", Some(own.await)),
                    ("subscribe to the users channel", Some(users.await)),
                    (
                        "subscribe to action notices",
                        match actions {
                            Some(actions) => Some(actions.await),
                            None => None,
                        },
                    ),
                ] {
                    if let Some(Err(err)) = result {
                        log::error!("hub {hub}: cannot {what}: {err}; it retries on its own");
                    }
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<HubMessage> for HubBridge {
    type Result = ();

    fn handle(&mut self, message: HubMessage, ctx: &mut Context<Self>) {
        let HubMessage { channel, payload } = message;
        match self.names.classify(&channel) {
            HubChannel::Channel(name) => self.deliver_channel(name, payload, None),
            HubChannel::Positioned(name) => match decode_positioned(&payload) {
                Some((position, payload)) => {
                    let name = name.to_owned();
                    self.deliver_positioned(&name, position, payload, ctx)
                }
                None => log::warn!("hub: dropped an unreadable message of `{name}`"),
            },
            HubChannel::PresenceEvents(name) => self.deliver_presence_events(name, &payload),
            HubChannel::Process(id) if id == self.process_id => {
                match ProcessMessage::decode(&payload) {
                    Ok(message) => self.connections.do_send(message),
                    Err(err) => log::warn!("hub: dropped an unreadable process message: {err}"),
                }
            }
            HubChannel::Users => match UserMessage::decode(&payload) {
                Ok(message) => self.users.do_send(message),
                Err(err) => log::warn!("hub: dropped an unreadable user message: {err}"),
            },
            HubChannel::Actions => {
                if let Some(supervisor) = &self.supervisor {
                    supervisor.do_send(QueueUpdated {
                        route: String::from_utf8_lossy(&payload).into_owned(),
                    });
                }
            }
            HubChannel::Process(_) | HubChannel::Unknown => {
                log::debug!("hub: ignored a message on `{channel}`");
            }
        }
    }
}

/// From a registry: a connection there joins `channel` (the first one there subscribes
/// the process, if it is not yet). Answered with [`ChannelReady`] at once when the hub
/// subscription is in effect, else when the hub answers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Activate {
    /// Channel name.
    pub channel: Arc<str>,
    /// The registry.
    pub registry: RegistryLink,
}

impl Handler<Activate> for HubBridge {
    type Result = ();

    fn handle(&mut self, activate: Activate, ctx: &mut Context<Self>) {
        let route = self.route_for(&activate.channel, ctx);
        if !route
            .registries
            .iter()
            .any(|r| r.id == activate.registry.id)
        {
            route.registries.push(activate.registry.clone());
        }
        if route.ready {
            activate.registry.ready.do_send(ChannelReady {
                channel: activate.channel,
                result: Ok(()),
            });
        }
    }
}

/// From a registry: `channel` lost its last local subscriber there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deactivate {
    /// Channel name.
    pub channel: Arc<str>,
    /// The registry's [`RegistryLink::id`].
    pub registry: u64,
}

impl Handler<Deactivate> for HubBridge {
    type Result = ();

    fn handle(&mut self, deactivate: Deactivate, ctx: &mut Context<Self>) {
        if let Some(route) = self.routes.get_mut(&deactivate.channel) {
            route.registries.retain(|r| r.id != deactivate.registry);
        }
        self.release(&deactivate.channel, ctx);
    }
}

/// Adds a server-side listener; resolves once the hub subscription is in effect.
#[derive(Message)]
#[rtype(result = "Result<(), HubError>")]
pub struct AddChannelHandler {
    /// Its id, for removal.
    pub id: ListenerId,
    /// Channel name.
    pub channel: Arc<str>,
    /// Where messages go.
    pub listener: Recipient<ChannelMessage>,
}

impl Handler<AddChannelHandler> for HubBridge {
    type Result = ResponseFuture<Result<(), HubError>>;

    fn handle(&mut self, add: AddChannelHandler, ctx: &mut Context<Self>) -> Self::Result {
        let route = self.route_for(&add.channel, ctx);
        route.listeners.push((add.id, add.listener));
        if route.ready {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = oneshot::channel();
        route.waiting.push(tx);
        Box::pin(async move { rx.await.unwrap_or(Err(HubError::NotRunning)) })
    }
}

/// Removes a server-side listener.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveChannelHandler(pub ListenerId);

impl Handler<RemoveChannelHandler> for HubBridge {
    type Result = ();

    fn handle(&mut self, remove: RemoveChannelHandler, ctx: &mut Context<Self>) {
        let channels: Vec<Arc<str>> = self
            .routes
            .iter_mut()
            .filter_map(|(channel, route)| {
                let before = route.listeners.len();
                route.listeners.retain(|(id, _)| *id != remove.0);
                (route.listeners.len() != before).then(|| channel.clone())
            })
            .collect();
        for channel in channels {
            self.release(&channel, ctx);
        }
    }
}

/// Answered once the bridge has started (its hub is connected, or has reported that it
/// cannot be and keeps trying): the bridge holds its mailbox until then.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HubReady;

impl Handler<HubReady> for HubBridge {
    type Result = ();

    fn handle(&mut self, _: HubReady, _: &mut Context<Self>) {}
}

/// Where "queue updated" notices go.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSupervisor(pub Recipient<QueueUpdated>);

impl Handler<SetSupervisor> for HubBridge {
    type Result = ();

    fn handle(&mut self, set: SetSupervisor, _: &mut Context<Self>) {
        self.supervisor = Some(set.0);
    }
}
