//! The connection: one actor per client, whatever its transport.
//!
//! It takes the client's frames ([`Inbound`]), parses them ([`crate::protocol`]) and acts:
//! subscriptions go to its thread's [`ChannelRegistry`](crate::ChannelRegistry),
//! publishes to the hub, action calls to the queue. It writes what comes back (channel
//! messages, answers, errors) to its [`Outlet`], the one bounded outbound queue that its
//! transport drains. It owns the connection's life, the same over every transport:
//! identity and permissions, heartbeats, the idle timeout, the per-connection limits, a
//! timer for every pending action call, and, when it stops, the release of every
//! subscription.
//!
//! Its parts live beside it: `connection/identity.rs` (authenticating, refreshing,
//! expiring), `connection/permissions.rs` (namespaces' rules, hooks, rate limits) and
//! `connection/calls.rs` (action calls and their bounds), `connection/history.rs`
//! (positions, recovery, history requests) and `connection/presence.rs` (its presence
//! entries, join and leave events, presence requests).

mod calls;
mod history;
mod identity;
mod permissions;
mod presence;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use bytestring::ByteString;
use futures::FutureExt;

use crate::actions::queue::ActionCall;
use crate::auth::rate_limit::{Rate, TokenBucket};
use crate::channels::channel_registry::{LocalRegistry, SubscriptionSettled};
use crate::codes::{CloseCode, ErrorCode};
use crate::connections::directory::{Close, Unregister};
use crate::connections::info::ConnectionInfo;
use crate::connections::outlet::Outlet;
use crate::hub::process_message::ProcessMessage;
use crate::hub::HubError;
use crate::node::Node;
use crate::protocol::{
    error_frame, hello_frame, parse_client_frame, subscribed_frame, unsubscribed_frame,
    ClientFrame, FrameError, HelloAnswer, ParseLimits, RequestUid, SubscribeOptions, PING_FRAME,
};
use crate::transport::TransportError;

use identity::Standing;

/// The error frame for a publish the hub refused. The message still reached this
/// server's own subscribers (see `Node::publish_bytes`). Logged at debug only: the hub
/// logs the outage itself, once, not once per message.
fn publish_failed(channel: &str, err: &HubError) -> ByteString {
    log::debug!("publish to `{channel}` failed: {err}");
    error_frame(
        &ErrorCode::Unavailable,
        &format!("message delivered on this server only: {err}"),
        Some(channel),
    )
}

/// A publish held back until the connection's subscriptions are in effect: parsed once,
/// the payload a slice of the frame's bytes.
struct HeldPublish {
    channel: Arc<str>,
    payload: Bytes,
}

/// The per-connection rate limits' buckets.
struct Buckets {
    publish: TokenBucket,
    action: TokenBucket,
    subscribe: TokenBucket,
    /// One token per `rate_limited` answer, `flood_limit` of them refilled over 10 s:
    /// empty, the connection is flooding and is closed.
    flood: TokenBucket,
}

/// One client connection.
pub struct Connection {
    node: Node,
    info: Arc<ConnectionInfo>,
    /// The way out, shared with this thread's registry and the transport's writer.
    outlet: Outlet,
    limits: ParseLimits,
    registry: Option<LocalRegistry>,
    channels: HashSet<Arc<str>>,
    /// This connection's subscriptions not in effect yet. While there are any, its own
    /// publishes wait in `held`, so that a client that sends `subscribe x` and then
    /// `channel x …` receives its own message, as it would expect.
    unsettled: HashSet<Arc<str>>,
    /// Publishes held back by `unsettled`, in the order they came (at most
    /// `outbound_queue` of them and `outbound_queue_bytes` of payload; beyond that they
    /// go out at once).
    held: VecDeque<HeldPublish>,
    /// The payload bytes in `held`.
    held_bytes: usize,
    pending: HashMap<RequestUid, SpawnHandle>,
    /// Pending calls in the queue or running, at most
    /// `max_running_actions_per_connection`.
    running: HashSet<RequestUid>,
    /// Pending calls held back by that bound, in the order they came.
    waiting: VecDeque<ActionCall>,
    closed: bool,
    /// The client asked (`hello {"heartbeat":true}`) for a `ping` frame every heartbeat.
    pings: bool,
    /// Where the connection stands with its identity, and its timers.
    standing: Standing,
    /// Subscriptions reading the past (recovery, the latest value), by channel.
    recoveries: HashMap<Arc<str>, history::Recovery>,
    /// Channels with presence where this connection has its entry.
    present: HashSet<Arc<str>>,
    /// Subscriptions that asked for join and leave events.
    join_leave: HashSet<Arc<str>>,
    buckets: Buckets,
    /// The ip counted by the node's per-ip limits, released when the connection ends.
    counted_ip: Option<String>,
}

impl Connection {
    /// A connection for `info`, writing to `outlet` (which its transport drains). Start
    /// it on the thread that serves the client (the transport does).
    pub fn new(node: Node, info: ConnectionInfo, outlet: Outlet) -> Connection {
        let limits = node.config().limits.parse_limits();
        let rates = &node.config().limits;
        let buckets = Buckets {
            publish: TokenBucket::new(rates.publish_rate),
            action: TokenBucket::new(rates.action_rate),
            subscribe: TokenBucket::new(rates.subscribe_rate),
            flood: TokenBucket::new(Rate::new(
                (rates.flood_limit / 10).max(1),
                rates.flood_limit,
            )),
        };
        Connection {
            node,
            info: Arc::new(info),
            outlet,
            limits,
            registry: None,
            channels: HashSet::new(),
            unsettled: HashSet::new(),
            held: VecDeque::new(),
            held_bytes: 0,
            pending: HashMap::new(),
            running: HashSet::new(),
            waiting: VecDeque::new(),
            closed: false,
            pings: false,
            standing: Standing::default(),
            recoveries: HashMap::new(),
            present: HashSet::new(),
            join_leave: HashSet::new(),
            buckets,
            counted_ip: None,
        }
    }

    /// Writes a frame; a client too slow to take it is closed (the outlet applies the
    /// slow-consumer policy), so memory stays bounded.
    fn write(&mut self, frame: ByteString, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        match self.outlet.send(frame) {
            Ok(()) => {}
            Err(TransportError::Full) => {
                log::warn!(
                    "connection {}: outbound queue full, closing as a slow consumer",
                    self.info.id
                );
                self.closed = true;
                ctx.stop();
            }
            Err(TransportError::Closed) => {
                self.closed = true;
                ctx.stop();
            }
        }
    }

    fn close(&mut self, code: CloseCode, ctx: &mut Context<Self>) {
        if !self.closed {
            self.closed = true;
            self.outlet.close(code);
        }
        ctx.stop();
    }

    /// Subscribes without asking the namespace's rules: the server asks (server API, the
    /// token's `channels`). Plain delivery, or the latest value first where the namespace
    /// sends it.
    fn subscribe(&mut self, channel: &str, ctx: &mut Context<Self>) {
        self.subscribe_with(channel, &SubscribeOptions::default(), ctx);
    }

    /// Subscribes with the client's options (positions, recovery), its rules passed.
    fn subscribe_with(
        &mut self,
        channel: &str,
        options: &SubscribeOptions,
        ctx: &mut Context<Self>,
    ) {
        if self.channels.contains(channel) {
            self.write(subscribed_frame(channel), ctx);
            return;
        }
        let max = self.node.config().limits.max_channels_per_connection;
        if self.channels.len() >= max {
            let message = format!("at most {max} channels per connection");
            self.write(
                error_frame(&ErrorCode::TooManyChannels, &message, Some(channel)),
                ctx,
            );
            return;
        }
        let join = match self
            .check_join_leave(channel, options.join_leave)
            .and_then(|()| self.join_for(channel, options, ctx))
        {
            Ok(join) => join,
            Err(message) => {
                self.write(
                    error_frame(&ErrorCode::NotFound, &message, Some(channel)),
                    ctx,
                );
                return;
            }
        };
        let channel: Arc<str> = Arc::from(channel);
        self.channels.insert(channel.clone());
        if options.join_leave {
            self.join_leave.insert(channel.clone());
        }
        if let Some(registry) = &self.registry {
            let settled = ctx.address().recipient();
            registry.join(channel.clone(), &self.info.id, &self.outlet, &settled, join);
            self.unsettled.insert(channel);
        }
    }

    /// Leaves a channel without answering (a subscription that could not be made).
    fn unsubscribe_quietly(&mut self, channel: &str) {
        self.recoveries.remove(channel);
        self.exit_presence(channel);
        if self.channels.remove(channel) {
            if let Some(registry) = &self.registry {
                registry.leave(channel, &self.outlet);
            }
        }
    }

    /// A subscription is in effect (or failed for good): publish what waited for it.
    fn settle(&mut self, channel: &str, ctx: &mut Context<Self>) {
        if self.unsettled.remove(channel) && self.unsettled.is_empty() {
            self.held_bytes = 0;
            while let Some(held) = self.held.pop_front() {
                self.publish(&held.channel, held.payload, ctx);
            }
        }
    }

    fn unsubscribe(&mut self, channel: &str, ctx: &mut Context<Self>) {
        self.settle(channel, ctx);
        // A plain call: no frame of `channel` can follow `unsubscribed`.
        self.unsubscribe_quietly(channel);
        self.write(unsubscribed_frame(channel), ctx);
    }

    /// Publishes a client's message that passed the rules: at once, or after the
    /// connection's own subscriptions are in effect.
    fn publish_or_hold(&mut self, channel: &str, payload: Bytes, ctx: &mut Context<Self>) {
        let limits = &self.node.config().limits;
        let room = self.held.len() < limits.outbound_queue
            && self.held_bytes + payload.len() <= limits.outbound_queue_bytes;
        if !self.unsettled.is_empty() && room {
            self.held_bytes += payload.len();
            self.held.push_back(HeldPublish {
                channel: Arc::from(channel),
                payload,
            });
        } else {
            self.publish(channel, payload, ctx);
        }
    }

    fn publish(&mut self, channel: &str, payload: Bytes, ctx: &mut Context<Self>) {
        let mut published = self.node.publish_bytes(channel, payload);
        // The in-memory hub answers at once; only a remote hub needs a spawned future.
        match (&mut published).now_or_never() {
            Some(Ok(())) => {}
            Some(Err(err)) => self.write(publish_failed(channel, &err), ctx),
            None => {
                let channel = channel.to_owned();
                ctx.spawn(published.into_actor(self).map(move |result, conn, ctx| {
                    if let Err(err) = result {
                        conn.write(publish_failed(&channel, &err), ctx);
                    }
                }));
            }
        }
    }

    fn hello(&mut self, heartbeat: bool, ctx: &mut Context<Self>) {
        self.pings = heartbeat;
        let config = self.node.config();
        let answer = HelloAnswer {
            heartbeat: config.heartbeat_interval.as_millis() as u64,
            max_frame_bytes: self.limits.max_frame_bytes,
            max_pending_actions: config.limits.max_pending_actions,
        };
        self.write(hello_frame(&answer), ctx);
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.registry = Some(self.node.local_registry());
        let me = ctx.address().downgrade();
        self.outlet.on_overflow(move || {
            if let Some(me) = me.upgrade() {
                me.do_send(Close(CloseCode::SlowConsumer));
            }
        });
        let config = self.node.config();
        let (interval, client_timeout) = (config.heartbeat_interval, config.client_timeout);
        ctx.run_interval(interval, move |conn, ctx| {
            let silent = conn.outlet.last_seen().elapsed() > client_timeout;
            if silent && !conn.outlet.is_vouched() {
                log::info!("connection {}: heartbeat timeout", conn.info.id);
                conn.close(CloseCode::HeartbeatTimeout, ctx);
            } else {
                conn.outlet.heartbeat();
                if conn.pings {
                    conn.write(ByteString::from_static(PING_FRAME), ctx);
                }
            }
        });
        if self.count_ip(ctx) {
            self.begin_identity(ctx);
        }
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        // Publishes still held for a subscription go out now: the client sent them. A hub
        // queues a publish when called, so the futures need not be awaited here.
        for held in std::mem::take(&mut self.held) {
            drop(self.node.publish_bytes(&held.channel, held.payload));
        }
        if !self.closed {
            self.closed = true;
            self.outlet.close(CloseCode::Normal);
        }
        if let Some(registry) = &self.registry {
            registry.leave_all(self.channels.iter(), &self.outlet);
        }
        for channel in std::mem::take(&mut self.channels) {
            self.exit_presence(&channel);
        }
        if let Some(ip) = self.counted_ip.take() {
            self.node.ip_limiter().release(&ip);
        }
        // Registered, or watched while it authenticated (the directory ignores others).
        self.node
            .directory()
            .do_send(Unregister(self.info.id.clone()));
        Running::Stop
    }
}

/// A text frame from the client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound(pub ByteString);

impl Handler<Inbound> for Connection {
    type Result = ();

    fn handle(&mut self, Inbound(frame): Inbound, ctx: &mut Context<Self>) {
        self.outlet.touch();
        let parsed = parse_client_frame(&frame, &self.limits);
        if !self.standing.is_open() {
            // Only `auth` is taken before the connection has an identity.
            match parsed {
                Ok(ClientFrame::Auth(token)) => self.auth(token.to_owned(), ctx),
                _ => self.refuse(crate::auth::AuthError::Required, ctx),
            }
            return;
        }
        match parsed {
            Ok(ClientFrame::Publish { channel, payload }) => {
                // The payload is a slice of the frame: share its bytes, do not copy them.
                let payload = frame.as_bytes().slice_ref(payload.as_bytes());
                self.client_publish(channel, payload, ctx);
            }
            Ok(ClientFrame::Subscribe(channel)) => {
                self.client_subscribe(channel, SubscribeOptions::default(), ctx);
            }
            Ok(ClientFrame::SubscribeWith { channel, options }) => {
                self.client_subscribe(channel, options, ctx);
            }
            Ok(ClientFrame::History(request)) => self.client_history(request, ctx),
            Ok(ClientFrame::Presence(request)) => self.client_presence(request, false, ctx),
            Ok(ClientFrame::PresenceStats(request)) => self.client_presence(request, true, ctx),
            Ok(ClientFrame::Unsubscribe(channel)) => self.unsubscribe(channel, ctx),
            Ok(ClientFrame::Action(request)) => self.client_call(request, ctx),
            Ok(ClientFrame::Hello(hello)) => self.hello(hello.heartbeat, ctx),
            Ok(ClientFrame::Auth(token)) => self.auth(token.to_owned(), ctx),
            Err(err) => {
                log::debug!("connection {}: refused a frame: {err}", self.info.id);
                self.write(err.to_frame(), ctx);
            }
        }
    }
}

/// A frame the transport could not even read as text (e.g. binary that is not UTF-8):
/// the connection answers the error and lives on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refused(pub FrameError);

impl Handler<Refused> for Connection {
    type Result = ();

    fn handle(&mut self, Refused(err): Refused, ctx: &mut Context<Self>) {
        self.outlet.touch();
        log::debug!("connection {}: refused a frame: {err}", self.info.id);
        self.write(err.to_frame(), ctx);
    }
}

impl Handler<SubscriptionSettled> for Connection {
    type Result = ();

    fn handle(
        &mut self,
        SubscriptionSettled(channel): SubscriptionSettled,
        ctx: &mut Context<Self>,
    ) {
        if self.channels.contains(&channel) {
            self.enter_presence(&channel);
        }
        self.settle(&channel, ctx);
    }
}

/// The transport is gone (the client closed or vanished).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TransportClosed;

impl Handler<TransportClosed> for Connection {
    type Result = ();

    fn handle(&mut self, _: TransportClosed, ctx: &mut Context<Self>) {
        if !self.closed && self.outlet.closing().is_none() {
            crate::metrics::METRICS
                .connections_closed
                .with_label_values(&["client"])
                .inc();
        }
        self.closed = true;
        ctx.stop();
    }
}

impl Handler<Close> for Connection {
    type Result = ();

    fn handle(&mut self, Close(code): Close, ctx: &mut Context<Self>) {
        self.close(code, ctx);
    }
}

impl Handler<ProcessMessage> for Connection {
    type Result = ();

    fn handle(&mut self, message: ProcessMessage, ctx: &mut Context<Self>) {
        match message {
            ProcessMessage::Send { frame, .. } => self.write(ByteString::from(frame), ctx),
            ProcessMessage::Answer {
                request_uid, frame, ..
            } => self.answered(request_uid, frame, ctx),
            ProcessMessage::Subscribe { channel, .. } => self.subscribe(&channel, ctx),
            ProcessMessage::Unsubscribe { channel, .. } => self.unsubscribe(&channel, ctx),
            ProcessMessage::Disconnect { .. } => self.close(CloseCode::Normal, ctx),
        }
    }
}
