//! The session: one actor per SockJS session, whatever its transport.
//!
//! A session outlives the HTTP requests that carry it: polls and streams come and go as
//! *receivers*, at most one at a time. Between them the session buffers the
//! application's messages (boundedly: see [`SessionSink`]) and flushes them, as one
//! `a[...]` frame, to the next receiver. It sends `o` to the first receiver, `h` every
//! `heartbeat_delay` to an idle one, `c[2010,"Another connection still open"]` to a
//! second one, and, once closed, its close frame to every later one until
//! `disconnect_delay` passes. A session without a receiver for `disconnect_delay` is
//! reaped: its application handler hears `closed` (the comet connection behind it stops
//! and releases its subscriptions) and it leaves the registry. Until then the session
//! vouches for its client to the application (`touch`), which may listen silently for
//! any length of time.
//!
//! WebSocket sessions are sessions too, with the socket as their only receiver; they end
//! with it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::prelude::*;
use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::{Outbox, TransportError};

use super::frames::{close_frame, messages_frame, HEARTBEAT, OPEN};
use super::receiver::{Receiver, ReceiverKind, Written};
use super::service::{InFlight, SessionHandler, SessionSink};
use super::Endpoint;

/// Where the session is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Created; the open frame is not out yet.
    Connecting,
    /// Open: messages flow both ways.
    Open,
    /// Closed by the application or by a lost receiver; every receiver that comes gets
    /// this close frame until the session is reaped.
    Closing { code: u16, reason: String },
}

/// One SockJS session.
pub(crate) struct Session {
    id: Option<Arc<str>>,
    sessions: Sessions,
    config: Arc<super::SockJsConfig>,
    handler: Option<Box<dyn SessionHandler>>,
    state: State,
    /// Messages for the client that no receiver took yet, bounded by
    /// `max_queued_messages` and `max_queued_bytes` under the `slow_consumer` policy.
    pending: Outbox,
    in_flight: Arc<InFlight>,
    first: Option<Receiver>,
    receiver: Option<Receiver>,
    timeout: Option<SpawnHandle>,
    waiting_for_room: bool,
    touch_interval: Option<Duration>,
}

impl Session {
    /// Starts a session for `request`, with `receiver` as its first receiving
    /// connection, and opens the endpoint's application on it. `id` is `None` for
    /// WebSocket sessions, which nobody looks up.
    pub(crate) fn start(
        endpoint: &Endpoint,
        id: Option<Arc<str>>,
        receiver: Receiver,
        request: &HttpRequest,
    ) -> Addr<Session> {
        let config = endpoint.config.clone();
        let service = endpoint.service.clone();
        let sessions = endpoint.sessions.clone();
        let transport = receiver.transport_name();
        let touch_interval = service.touch_interval().filter(|every| !every.is_zero());
        Session::create(move |ctx| {
            let in_flight = Arc::new(InFlight::default());
            let sink = SessionSink::new(
                ctx.address(),
                in_flight.clone(),
                config.max_queued_messages,
                config.slow_consumer,
                transport,
            );
            let handler = service.open(sink, request);
            log::debug!("sockjs session {id:?} opened ({transport})");
            let pending = Outbox::with_bounds(
                config.max_queued_messages,
                config.max_queued_bytes,
                config.slow_consumer,
            );
            Session {
                id,
                sessions,
                config,
                handler: Some(handler),
                state: State::Connecting,
                pending,
                in_flight,
                first: Some(receiver),
                receiver: None,
                timeout: None,
                waiting_for_room: false,
                touch_interval,
            }
        })
    }

    fn attach(&mut self, mut receiver: Receiver, ctx: &mut Context<Self>) {
        if let Some(current) = self.receiver.as_ref().filter(|r| r.is_closed()) {
            let gone = current.id;
            self.receiver_closed(gone, ctx);
        }
        if self.receiver.is_some() {
            let _ = receiver.send(&close_frame(2010, "Another connection still open"));
            receiver.end(2010, "Another connection still open");
            return;
        }
        if let Some(timeout) = self.timeout.take() {
            ctx.cancel_future(timeout);
        }
        match self.state.clone() {
            State::Closing { code, reason } => {
                let mut done = false;
                if !self.pending.is_empty() {
                    let frame = self.take_pending_frame();
                    done = receiver.send(&frame) != Ok(Written::More);
                }
                if !done {
                    let _ = receiver.send(&close_frame(code, &reason));
                }
                receiver.end(code, &reason);
                self.schedule_timeout(ctx);
                return;
            }
            State::Connecting => {
                let raw = receiver.kind == ReceiverKind::RawWebSocket;
                self.receiver = Some(receiver);
                self.state = State::Open;
                if !raw {
                    self.write(OPEN, ctx);
                }
            }
            State::Open => self.receiver = Some(receiver),
        }
        self.touch();
        self.flush(ctx);
    }

    /// Writes one frame to the receiver, ending the receiver when it is done. False if
    /// there is no receiver or it has no room.
    fn write(&mut self, frame: &str, ctx: &mut Context<Self>) -> bool {
        let Some(receiver) = self.receiver.as_mut() else {
            return false;
        };
        match receiver.send(frame) {
            Ok(Written::More) => true,
            Ok(Written::Done) => {
                self.end_receiver(1000, "Normal closure", ctx);
                true
            }
            Err(TransportError::Full) => false,
            Err(TransportError::Closed) => {
                let gone = receiver.id;
                self.receiver_closed(gone, ctx);
                false
            }
        }
    }

    /// Sends what is buffered to the receiver, as far as it has room.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        loop {
            let Some(receiver) = &self.receiver else {
                return;
            };
            if self.pending.is_empty() {
                return;
            }
            if !receiver.has_room() {
                self.wait_for_room(ctx);
                return;
            }
            if receiver.kind == ReceiverKind::RawWebSocket {
                if let Some(message) = self.pending.pop() {
                    self.write(&message, ctx);
                }
            } else {
                let frame = self.take_pending_frame();
                self.write(&frame, ctx);
                return;
            }
        }
    }

    /// Everything buffered, as one `a[...]` frame.
    fn take_pending_frame(&mut self) -> ByteString {
        let messages: Vec<ByteString> = std::iter::from_fn(|| self.pending.pop()).collect();
        messages_frame(messages.iter().map(|m| &**m))
    }

    /// Flushes again once the receiver's channel has room.
    fn wait_for_room(&mut self, ctx: &mut Context<Self>) {
        let Some(receiver) = &self.receiver else {
            return;
        };
        if self.waiting_for_room {
            return;
        }
        self.waiting_for_room = true;
        let channel = receiver.channel();
        ctx.spawn(
            async move {
                // The permit is dropped at once: this only waits for the room.
                let _ = channel.reserve().await;
            }
            .into_actor(self)
            .map(|_, session, ctx| {
                session.waiting_for_room = false;
                session.flush(ctx);
            }),
        );
    }

    /// Ends the current receiver on purpose. A WebSocket session ends with it; an HTTP
    /// one waits `disconnect_delay` for the next.
    fn end_receiver(&mut self, code: u16, reason: &str, ctx: &mut Context<Self>) {
        let Some(receiver) = self.receiver.take() else {
            return;
        };
        let websocket = matches!(
            receiver.kind,
            ReceiverKind::WebSocket | ReceiverKind::RawWebSocket
        );
        receiver.end(code, reason);
        if websocket {
            self.end_application();
            ctx.stop();
        } else {
            self.schedule_timeout(ctx);
        }
    }

    /// The client went away from receiver `id` without the session ending it.
    fn receiver_closed(&mut self, id: u64, ctx: &mut Context<Self>) {
        if self.receiver.as_ref().map(|r| r.id) != Some(id) {
            return;
        }
        let Some(receiver) = self.receiver.take() else {
            return;
        };
        match receiver.kind {
            ReceiverKind::WebSocket | ReceiverKind::RawWebSocket => {
                log::debug!("sockjs websocket session closed by the client");
                self.end_application();
                ctx.stop();
            }
            ReceiverKind::Polling | ReceiverKind::Streaming => {
                log::debug!("sockjs session {:?}: connection interrupted", self.id);
                if !matches!(self.state, State::Closing { .. }) {
                    self.state = State::Closing {
                        code: 1002,
                        reason: "Connection interrupted".to_owned(),
                    };
                    self.end_application();
                }
                self.schedule_timeout(ctx);
            }
        }
    }

    /// The application closes the session.
    fn close(&mut self, code: u16, reason: String, ctx: &mut Context<Self>) {
        if matches!(self.state, State::Closing { .. }) {
            return;
        }
        log::debug!("sockjs session {:?} closed: {code} {reason}", self.id);
        self.state = State::Closing {
            code,
            reason: reason.clone(),
        };
        self.end_application();
        self.flush(ctx);
        let Some(receiver) = &mut self.receiver else {
            return;
        };
        if receiver.kind != ReceiverKind::RawWebSocket {
            let _ = receiver.send_last(&close_frame(code, &reason));
        }
        self.end_receiver(code, &reason, ctx);
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        self.touch();
        let Some(receiver) = &self.receiver else {
            return;
        };
        if receiver.kind != ReceiverKind::RawWebSocket && receiver.has_room() {
            self.write(HEARTBEAT, ctx);
        }
    }

    /// Vouches for the client to the application: the session itself reaps clients
    /// that stopped coming.
    fn touch(&mut self) {
        if let Some(handler) = &mut self.handler {
            handler.touch();
        }
    }

    fn schedule_timeout(&mut self, ctx: &mut Context<Self>) {
        if let Some(timeout) = self.timeout.take() {
            ctx.cancel_future(timeout);
        }
        let delay = self.config.disconnect_delay;
        self.timeout = Some(ctx.run_later(delay, |session, ctx| {
            session.timeout = None;
            if session.receiver.is_none() {
                log::debug!("sockjs session {:?} reaped", session.id);
                session.end_application();
                ctx.stop();
            }
        }));
    }

    /// Tells the application, once, that the session is over.
    fn end_application(&mut self) {
        if let Some(mut handler) = self.handler.take() {
            handler.closed();
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(first) = self.first.take() {
            self.attach(first, ctx);
        }
        let heartbeat = self.config.heartbeat_delay;
        ctx.run_interval(heartbeat, |session, ctx| session.heartbeat(ctx));
        if let Some(every) = self.touch_interval.filter(|every| *every < heartbeat) {
            ctx.run_interval(every, |session, _| session.touch());
        }
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        if let Some(id) = &self.id {
            self.sessions.remove(id, &ctx.address());
        }
        self.end_application();
        if let Some(receiver) = self.receiver.take() {
            receiver.end(1001, "Server shutting down");
        }
        self.pending.clear();
        Running::Stop
    }
}

/// A new receiving connection for the session.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Attach(pub(crate) Receiver);

impl Handler<Attach> for Session {
    type Result = ();

    fn handle(&mut self, Attach(receiver): Attach, ctx: &mut Context<Self>) {
        self.attach(receiver, ctx);
    }
}

/// Messages from the client.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Incoming(pub(crate) Vec<String>);

impl Handler<Incoming> for Session {
    type Result = ();

    fn handle(&mut self, Incoming(messages): Incoming, _: &mut Context<Self>) {
        if self.state != State::Open {
            return;
        }
        if let Some(handler) = &mut self.handler {
            for message in messages {
                handler.message(ByteString::from(message));
            }
        }
    }
}

/// A message from the application for the client (counted in by [`SessionSink`]).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Push(pub(crate) ByteString);

impl Handler<Push> for Session {
    type Result = ();

    fn handle(&mut self, Push(message): Push, ctx: &mut Context<Self>) {
        self.in_flight.messages.fetch_sub(1, Ordering::Relaxed);
        if self.state != State::Open {
            return;
        }
        let dropped = self.in_flight.dropped.swap(0, Ordering::Relaxed);
        self.pending.note_dropped(dropped);
        if self.pending.push(message).is_err() {
            log::warn!(
                "sockjs session {:?}: {} messages queued, closing as a slow consumer",
                self.id,
                self.pending.len()
            );
            // As for any close, the messages buffered before go out first.
            let code = comet_actors::CloseCode::SlowConsumer;
            self.close(code.code(), code.reason().to_owned(), ctx);
            return;
        }
        self.flush(ctx);
    }
}

/// The application closes the session with a code and reason.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CloseSession {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

impl Handler<CloseSession> for Session {
    type Result = ();

    fn handle(&mut self, close: CloseSession, ctx: &mut Context<Self>) {
        self.close(close.code, close.reason, ctx);
    }
}

/// A receiving connection went away before the session ended it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ReceiverClosed {
    pub(crate) receiver: u64,
}

impl Handler<ReceiverClosed> for Session {
    type Result = ();

    fn handle(&mut self, closed: ReceiverClosed, ctx: &mut Context<Self>) {
        self.receiver_closed(closed.receiver, ctx);
    }
}

/// The sessions of one endpoint by id, shared by every worker thread.
#[derive(Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<HashMap<Arc<str>, Addr<Session>>>>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Addr<Session>>> {
        // A panic elsewhere cannot leave the map half-changed: keep serving.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live session with this id.
    pub(crate) fn find(&self, id: &str) -> Option<Addr<Session>> {
        self.lock().get(id).filter(|addr| addr.connected()).cloned()
    }

    /// Hands `receiver` to the session `id`, or starts the session with `open` if there
    /// is none and fewer than `max` are open. Returns the session; `None` if it would
    /// have been one too many.
    pub(crate) fn attach_or_open(
        &self,
        id: &str,
        receiver: Receiver,
        max: usize,
        open: impl FnOnce(Arc<str>, Receiver) -> Addr<Session>,
    ) -> Option<Addr<Session>> {
        let mut sessions = self.lock();
        if let Some(session) = sessions.get(id).filter(|addr| addr.connected()) {
            session.do_send(Attach(receiver));
            return Some(session.clone());
        }
        // A dead entry under this id is replaced, so it does not count.
        if !sessions.contains_key(id) && sessions.len() >= max {
            return None;
        }
        let id: Arc<str> = Arc::from(id);
        let session = open(id.clone(), receiver);
        sessions.insert(id, session.clone());
        Some(session)
    }

    fn remove(&self, id: &str, session: &Addr<Session>) {
        let mut sessions = self.lock();
        if sessions.get(id) == Some(session) {
            sessions.remove(id);
        }
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
