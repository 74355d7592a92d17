//! The session of the HTTP transports: one actor per SockJS session that outlives the
//! requests carrying it (xhr-polling, xhr-streaming, eventsource, htmlfile, jsonp).
//! WebSocket sessions are their socket and need none of this (`websocket.rs`).
//!
//! Polls and streams come and go as *receivers*, at most one at a time. The session does
//! not buffer: what the application writes waits in its [`Outlet`], the one bounded
//! outbound queue every transport has, until a receiver takes it; the session drains it
//! into the receiver as one `a[...]` frame, `h` when a heartbeat is due, and the close as
//! `c[code,"reason"]`. It sends `o` to the first receiver, `c[2010,"Another connection
//! still open"]` to a second one, and, once closed, its close frame to every later one
//! until `disconnect_delay` passes. A session without a receiver for `disconnect_delay`
//! is reaped: its application hears `closed` (the comet connection behind it stops and
//! releases its subscriptions) and it leaves the registry. That is how a session's client
//! is known to be gone, so the session vouches for it to its connection
//! ([`Outlet::vouch`]): a client that only listens stays as long as it keeps polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix::prelude::*;
use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::{CloseCode, Out, Outlet, TransportError};

use super::frames::{close_frame, messages_frame, HEARTBEAT, OPEN};
use super::receiver::{Receiver, ReceiverClosed, Written};
use super::Endpoint;
use crate::transport::service::{SessionHandler, SessionSink};

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Created; the open frame is not out yet.
    Connecting,
    /// Open: messages flow both ways.
    Open,
    /// Closed by the application or by a lost receiver; every receiver that comes gets
    /// this close frame until the session is reaped.
    Closing(CloseCode),
}

/// One SockJS session over HTTP.
pub(crate) struct Session {
    id: Arc<str>,
    sessions: Sessions,
    config: Arc<super::SockJsConfig>,
    outlet: Outlet,
    handler: Option<Box<dyn SessionHandler>>,
    state: State,
    first: Option<Receiver>,
    receiver: Option<Receiver>,
    timeout: Option<SpawnHandle>,
    /// A wait for the outlet or for room in the receiver is on its way.
    waiting: bool,
}

impl Session {
    /// Starts session `id` for `request`, with `receiver` as its first receiving
    /// connection, and opens the endpoint's application on it.
    pub(crate) fn start(
        endpoint: &Endpoint,
        id: Arc<str>,
        receiver: Receiver,
        request: &HttpRequest,
    ) -> Addr<Session> {
        let config = endpoint.config.clone();
        let outlet = Outlet::new(&endpoint.limits);
        outlet.vouch();
        let transport = receiver.transport_name();
        let handler = endpoint
            .service
            .open(SessionSink::new(outlet.clone(), transport), request);
        log::debug!("sockjs session {id} opened ({transport})");
        Session {
            id,
            sessions: endpoint.sessions.clone(),
            config,
            outlet,
            handler: Some(handler),
            state: State::Connecting,
            first: Some(receiver),
            receiver: None,
            timeout: None,
            waiting: false,
        }
        .start()
    }

    fn attach(&mut self, mut receiver: Receiver, ctx: &mut Context<Self>) {
        if let Some(current) = self.receiver.as_ref().filter(|r| r.is_closed()) {
            let gone = current.id;
            self.receiver_closed(gone, ctx);
        }
        if self.receiver.is_some() {
            let _ = receiver.send(&close_frame(2010, "Another connection still open"));
            receiver.end();
            return;
        }
        if let Some(timeout) = self.timeout.take() {
            ctx.cancel_future(timeout);
        }
        if let State::Closing(code) = self.state {
            let _ = receiver.send(&close_frame(code.code(), code.reason()));
            receiver.end();
            self.schedule_timeout(ctx);
            return;
        }
        let fresh = self.state == State::Connecting;
        self.state = State::Open;
        self.receiver = Some(receiver);
        if fresh {
            self.write(OPEN, ctx);
        }
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
                self.end_receiver(ctx);
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

    /// Moves what the outlet holds to the receiver, as far as it has room; then waits for
    /// more (or for room).
    fn flush(&mut self, ctx: &mut Context<Self>) {
        loop {
            let Some(receiver) = &mut self.receiver else {
                return;
            };
            if !self.outlet.has_output() {
                break;
            }
            if !receiver.has_room() {
                // Only the close is owed: it has a slot of its own.
                if self.outlet.queued().0 == 0 {
                    if let Some(code) = self.outlet.closing() {
                        let _ = receiver.send_last(&close_frame(code.code(), code.reason()));
                        self.outlet.drain(0, |_| {});
                        self.closed(code, ctx);
                        return;
                    }
                }
                self.wait_for_room(ctx);
                return;
            }
            let (mut heartbeat, mut close) = (false, None);
            let mut frames: Vec<ByteString> = Vec::new();
            self.outlet.drain(usize::MAX, |out| match out {
                Out::Heartbeat => heartbeat = true,
                Out::Frame(frame) => frames.push(frame),
                Out::Close(code) => close = Some(code),
            });
            let mut more = true;
            if !frames.is_empty() {
                more = self.write(&messages_frame(frames.iter().map(|f| &**f)), ctx);
            } else if heartbeat {
                more = self.write(HEARTBEAT, ctx);
            }
            if let Some(code) = close {
                if let Some(receiver) = &mut self.receiver {
                    let _ = receiver.send_last(&close_frame(code.code(), code.reason()));
                }
                self.closed(code, ctx);
                return;
            }
            if !more {
                break;
            }
        }
        self.wait_for_output(ctx);
    }

    /// Flushes again once the outlet has something for the client.
    fn wait_for_output(&mut self, ctx: &mut Context<Self>) {
        if self.waiting || self.outlet.is_finished() {
            return;
        }
        self.waiting = true;
        ctx.spawn(
            self.outlet
                .ready()
                .into_actor(self)
                .map(|(), session, ctx| {
                    session.waiting = false;
                    session.flush(ctx);
                }),
        );
    }

    /// Flushes again once the receiver's channel has room.
    fn wait_for_room(&mut self, ctx: &mut Context<Self>) {
        let Some(receiver) = &self.receiver else {
            return;
        };
        if self.waiting {
            return;
        }
        self.waiting = true;
        let channel = receiver.channel();
        ctx.spawn(
            async move {
                // The permit is dropped at once: this only waits for the room.
                let _ = channel.reserve().await;
            }
            .into_actor(self)
            .map(|_, session, ctx| {
                session.waiting = false;
                session.flush(ctx);
            }),
        );
    }

    /// Ends the current receiver on purpose (a poll answered, a stream at its limit);
    /// the next one is awaited for `disconnect_delay`.
    fn end_receiver(&mut self, ctx: &mut Context<Self>) {
        if let Some(receiver) = self.receiver.take() {
            receiver.end();
            self.schedule_timeout(ctx);
        }
    }

    /// The client went away from receiver `id` without the session ending it.
    fn receiver_closed(&mut self, id: u64, ctx: &mut Context<Self>) {
        if self.receiver.as_ref().map(|r| r.id) != Some(id) {
            return;
        }
        self.receiver = None;
        log::debug!("sockjs session {}: connection interrupted", self.id);
        if !matches!(self.state, State::Closing(_)) {
            self.state = State::Closing(CloseCode::Other(1002, "Connection interrupted"));
            self.outlet.finish();
            self.end_application();
        }
        self.schedule_timeout(ctx);
    }

    /// The close went out (or is owed to the next receiver): the session is closing.
    fn closed(&mut self, code: CloseCode, ctx: &mut Context<Self>) {
        log::debug!("sockjs session {} closed: {}", self.id, code.code());
        self.state = State::Closing(code);
        self.end_application();
        self.end_receiver(ctx);
        self.schedule_timeout(ctx);
    }

    fn schedule_timeout(&mut self, ctx: &mut Context<Self>) {
        if let Some(timeout) = self.timeout.take() {
            ctx.cancel_future(timeout);
        }
        let delay = self.config.disconnect_delay;
        self.timeout = Some(ctx.run_later(delay, |session, ctx| {
            session.timeout = None;
            if session.receiver.is_none() {
                log::debug!("sockjs session {} reaped", session.id);
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
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        self.sessions.remove(&self.id, &ctx.address());
        self.outlet.finish();
        self.end_application();
        if let Some(mut receiver) = self.receiver.take() {
            let _ = receiver.send_last(&close_frame(1001, "Server shutting down"));
            receiver.end();
        }
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
        self.outlet.touch();
        if let Some(handler) = &mut self.handler {
            for message in messages {
                handler.message(ByteString::from(message));
            }
        }
    }
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
