//! The connection: one actor per client, whatever its transport.
//!
//! It takes the client's frames ([`Inbound`]), parses them ([`crate::protocol`]) and acts:
//! subscriptions go to its thread's [`ChannelRegistry`](crate::ChannelRegistry),
//! publishes to the hub, action calls to the queue. It writes what comes back (channel
//! messages, answers, errors) to its [`Outlet`], the one bounded outbound queue that its
//! transport drains. It owns the connection's life, the same over every transport:
//! heartbeats, the idle timeout, the per-connection limits, a timer for every pending
//! action call, and, when it stops, the release of every subscription.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use bytestring::ByteString;
use futures::FutureExt;

use crate::actions::queue::{unix_millis, ActionCall, QueueError};
use crate::channels::channel_registry::{LocalRegistry, SubscriptionSettled};
use crate::codes::{CloseCode, ErrorCode};
use crate::connections::directory::{Close, Register, Unregister};
use crate::connections::info::ConnectionInfo;
use crate::connections::outlet::Outlet;
use crate::hub::process_message::ProcessMessage;
use crate::hub::HubError;
use crate::node::{Node, NodeError};
use crate::protocol::{
    action_error_frame, error_frame, hello_frame, parse_client_frame, subscribed_frame,
    unsubscribed_frame, ActionRequest, ClientFrame, FrameError, HelloAnswer, ParseLimits,
    RequestUid, PING_FRAME,
};
use crate::transport::TransportError;

/// How much longer than `action_timeout` the connection waits before it answers
/// `timeout` itself: the worker's own timeout answer should normally come first.
const ANSWER_GRACE: Duration = Duration::from_millis(500);

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
    /// `outbound_queue`; beyond that they go out at once).
    held: VecDeque<HeldPublish>,
    pending: HashMap<RequestUid, SpawnHandle>,
    /// Pending calls in the queue or running, at most
    /// `max_running_actions_per_connection`.
    running: HashSet<RequestUid>,
    /// Pending calls held back by that bound, in the order they came.
    waiting: VecDeque<ActionCall>,
    closed: bool,
    /// The client asked (`hello {"heartbeat":true}`) for a `ping` frame every heartbeat.
    pings: bool,
}

impl Connection {
    /// A connection for `info`, writing to `outlet` (which its transport drains). Start
    /// it on the thread that serves the client (the transport does).
    pub fn new(node: Node, info: ConnectionInfo, outlet: Outlet) -> Connection {
        let limits = node.config().limits.parse_limits();
        Connection {
            node,
            info: Arc::new(info),
            outlet,
            limits,
            registry: None,
            channels: HashSet::new(),
            unsettled: HashSet::new(),
            held: VecDeque::new(),
            pending: HashMap::new(),
            running: HashSet::new(),
            waiting: VecDeque::new(),
            closed: false,
            pings: false,
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

    fn subscribe(&mut self, channel: &str, ctx: &mut Context<Self>) {
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
        let channel: Arc<str> = Arc::from(channel);
        self.channels.insert(channel.clone());
        if let Some(registry) = &self.registry {
            let settled = ctx.address().recipient();
            registry.join(channel.clone(), &self.info.id, &self.outlet, &settled);
            self.unsettled.insert(channel);
        }
    }

    /// A subscription is in effect (or failed for good): publish what waited for it.
    fn settle(&mut self, channel: &str, ctx: &mut Context<Self>) {
        if self.unsettled.remove(channel) && self.unsettled.is_empty() {
            while let Some(held) = self.held.pop_front() {
                self.publish(&held.channel, held.payload, ctx);
            }
        }
    }

    fn unsubscribe(&mut self, channel: &str, ctx: &mut Context<Self>) {
        self.settle(channel, ctx);
        if self.channels.remove(channel) {
            if let Some(registry) = &self.registry {
                // A plain call: no frame of `channel` can follow `unsubscribed`.
                registry.leave(channel, &self.outlet);
            }
        }
        self.write(unsubscribed_frame(channel), ctx);
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

    fn call(&mut self, request: ActionRequest, ctx: &mut Context<Self>) {
        let uid = request.request_uid;
        let max = self.node.config().limits.max_pending_actions;
        if self.pending.contains_key(&uid) {
            let message = "a call with this requestUid is already pending";
            self.write(action_error_frame(&uid, &ErrorCode::BadFrame, message), ctx);
            return;
        }
        if self.pending.len() >= max {
            let message = format!("at most {max} action calls may be pending per connection");
            self.write(
                action_error_frame(&uid, &ErrorCode::TooManyPending, &message),
                ctx,
            );
            return;
        }
        let timeout = self.node.config().action_timeout;
        let call = ActionCall {
            id: uuid::Uuid::new_v4().simple().to_string(),
            route: request.route,
            request_uid: uid.clone(),
            params: request.params,
            connection: (*self.info).clone(),
            deadline_ms: unix_millis() + timeout.as_millis() as u64,
        };
        log::debug!(
            "connection {}: action `{}` ({uid})",
            self.info.id,
            call.route
        );
        let timer_uid = uid.clone();
        let timer = ctx.run_later(timeout + ANSWER_GRACE, move |conn, ctx| {
            if conn.pending.remove(&timer_uid).is_some() {
                conn.waiting.retain(|call| call.request_uid != timer_uid);
                conn.finished(&timer_uid, ctx);
                let message = format!("no answer within {} ms", timeout.as_millis());
                conn.write(
                    action_error_frame(&timer_uid, &ErrorCode::Timeout, &message),
                    ctx,
                );
            }
        });
        self.pending.insert(uid, timer);
        if self.running.len() < self.max_running() {
            self.enqueue(call, ctx);
        } else {
            self.waiting.push_back(call);
        }
    }

    /// The bound on this connection's calls in the queue or running.
    fn max_running(&self) -> usize {
        self.node
            .config()
            .limits
            .max_running_actions_per_connection
            .max(1)
    }

    /// A pending call is answered (or given up): the next waiting ones take its place.
    fn finished(&mut self, uid: &RequestUid, ctx: &mut Context<Self>) {
        self.running.remove(uid);
        while self.running.len() < self.max_running() {
            let Some(call) = self.waiting.pop_front() else {
                break;
            };
            // Past its deadline, no worker would run it: its timer answers `timeout`.
            if !call.is_expired() {
                self.enqueue(call, ctx);
            }
        }
    }

    /// Puts a call on the queue; a refusal answers it at once.
    fn enqueue(&mut self, call: ActionCall, ctx: &mut Context<Self>) {
        let uid = call.request_uid.clone();
        self.running.insert(uid.clone());
        let route = call.route.clone();
        ctx.spawn(
            self.node
                .enqueue(call)
                .into_actor(self)
                .map(move |result, conn, ctx| {
                    let Err(err) = result else { return };
                    let (code, message) = match err {
                        NodeError::Queue(QueueError::NotServed(_)) => (
                            ErrorCode::NotFound,
                            format!("no handler for action `{route}`"),
                        ),
                        other => {
                            log::warn!("action `{route}` could not be queued: {other}");
                            (
                                ErrorCode::Unavailable,
                                format!("action not queued: {other}"),
                            )
                        }
                    };
                    if let Some(timer) = conn.pending.remove(&uid) {
                        ctx.cancel_future(timer);
                        conn.finished(&uid, ctx);
                        conn.write(action_error_frame(&uid, &code, &message), ctx);
                    }
                }),
        );
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
        self.node.directory().do_send(Register {
            info: self.info.clone(),
            messages: ctx.address().recipient(),
            close: ctx.address().recipient(),
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
        self.channels.clear();
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
        match parse_client_frame(&frame, &self.limits) {
            Ok(ClientFrame::Publish { channel, payload }) => {
                // The payload is a slice of the frame: share its bytes, do not copy them.
                let payload = frame.as_bytes().slice_ref(payload.as_bytes());
                if !self.unsettled.is_empty()
                    && self.held.len() < self.node.config().limits.outbound_queue
                {
                    self.held.push_back(HeldPublish {
                        channel: Arc::from(channel),
                        payload,
                    });
                } else {
                    self.publish(channel, payload, ctx);
                }
            }
            Ok(ClientFrame::Subscribe(channel)) => self.subscribe(channel, ctx),
            Ok(ClientFrame::Unsubscribe(channel)) => self.unsubscribe(channel, ctx),
            Ok(ClientFrame::Action(request)) => self.call(request, ctx),
            Ok(ClientFrame::Hello(hello)) => {
                self.pings = hello.heartbeat;
                let config = self.node.config();
                let answer = HelloAnswer {
                    heartbeat: config.heartbeat_interval.as_millis() as u64,
                    max_frame_bytes: self.limits.max_frame_bytes,
                    max_pending_actions: config.limits.max_pending_actions,
                };
                self.write(hello_frame(&answer), ctx);
            }
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
            } => match self.pending.remove(&request_uid) {
                Some(timer) => {
                    ctx.cancel_future(timer);
                    self.finished(&request_uid, ctx);
                    self.write(ByteString::from(frame), ctx);
                }
                None => log::debug!(
                    "connection {}: dropped a late answer to {request_uid}",
                    self.info.id
                ),
            },
            ProcessMessage::Subscribe { channel, .. } => self.subscribe(&channel, ctx),
            ProcessMessage::Unsubscribe { channel, .. } => self.unsubscribe(&channel, ctx),
            ProcessMessage::Disconnect { .. } => self.close(CloseCode::Normal, ctx),
        }
    }
}
