//! A long-polling Engine.IO session: one actor that outlives its requests, like SockJS's
//! HTTP sessions. What the app's side writes waits in the session's [`Outlet`] until a
//! poll (`GET`) takes it, as one body of `\x1e`-separated packets; `POST`s bring the
//! client's packets. Once a WebSocket upgrades the session (`upgrade.rs`), the session
//! drains its outlet into that socket instead, as encoded packets; the socket may be on
//! another worker thread, so they go through a bounded channel.
//!
//! The session closes itself (and its app) when the client sends `1`, breaks the
//! protocol, polls twice at once, stays silent for `pingInterval + pingTimeout`, or has
//! not connected by `connect_timeout`; then it leaves the registry, so later requests
//! with its `sid` get 400.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix::prelude::*;
use bytestring::ByteString;
use comet_actors::{CloseCode, Out, Outlet};
use tokio::sync::{mpsc, oneshot};

use super::app::{EioApp, EioConfig};
use super::eio::{binary_frame, encode_polling, EioMessage, Packet, SEPARATOR};

/// How long a poll that comes during an upgrade's probe is held before it gets `6`.
pub(super) const PROBE_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// What a poll gets: a body, or 400.
#[derive(Debug)]
pub(crate) enum PollReply {
    /// `200` with this body.
    Payload(String),
    /// `400`: the session is gone, upgraded, or the poll was one too many.
    Refused,
}

/// What the session sends its upgraded socket.
#[derive(Debug)]
pub(crate) enum ToSocket {
    /// Encoded packets, in order.
    Packets(Vec<ByteString>),
    /// Close with this code.
    Close(CloseCode),
}

pub(super) enum State {
    Polling,
    /// A WebSocket answered the probe: polls get `6` at once.
    Probing,
    Upgraded(mpsc::Sender<ToSocket>),
}

/// One Engine.IO session that began with long-polling.
pub(crate) struct Session {
    pub(super) sid: Arc<str>,
    pub(super) sessions: Sessions,
    pub(super) config: Arc<EioConfig>,
    pub(super) outlet: Outlet,
    pub(super) app: Option<Box<dyn EioApp>>,
    pub(super) poll: Option<oneshot::Sender<PollReply>>,
    pub(super) state: State,
    /// The WebSocket that claimed the upgrade, while it lives.
    pub(super) upgrader: Option<u64>,
    /// The waiting poll came while a socket upgrades the session (not from a client that
    /// upgrades: that one stopped polling).
    pub(super) poll_late: bool,
    /// The client sent `1`: the session ends in a moment (a poll on its way gets `6`).
    pub(super) client_closed: bool,
    /// When the last ping went to the client: it has `pingTimeout` from then to answer.
    pub(super) pinged: Option<tokio::time::Instant>,
    pub(super) waiting: bool,
}

impl Session {
    /// A session `sid` on `outlet` for `app`; start it on the thread of the outlet.
    pub(crate) fn new(
        sid: Arc<str>,
        sessions: Sessions,
        config: Arc<EioConfig>,
        outlet: Outlet,
        app: Box<dyn EioApp>,
    ) -> Session {
        Session {
            sid,
            sessions,
            config,
            outlet,
            app: Some(app),
            poll: None,
            state: State::Polling,
            upgrader: None,
            poll_late: false,
            client_closed: false,
            pinged: None,
            waiting: false,
        }
    }

    /// Takes what the outlet holds (up to `maxPayload` bytes), in the app's words.
    fn take(&mut self) -> (Vec<Taken>, Option<CloseCode>) {
        let mut outs = Vec::new();
        self.outlet
            .drain(self.config.max_payload, |out| outs.push(out));
        let mut taken = Vec::with_capacity(outs.len());
        let mut close = None;
        for out in outs {
            match out {
                Out::Heartbeat => {
                    self.pinged = Some(tokio::time::Instant::now());
                    taken.push(Taken::Ping);
                }
                Out::Frame(frame) => {
                    if let Some(app) = &mut self.app {
                        app.outbound(frame, &mut |m| taken.push(Taken::Message(m)));
                    }
                }
                Out::Close(code) => {
                    if let Some(app) = &mut self.app {
                        app.closing(code, &mut |m| taken.push(Taken::Message(m)));
                    }
                    close = Some(code);
                }
            }
        }
        (taken, close)
    }

    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.poll.as_ref().is_some_and(oneshot::Sender::is_closed) {
            self.poll = None;
        }
        match &self.state {
            State::Polling if self.poll.is_some() && self.outlet.has_output() => {
                let (taken, close) = self.take();
                let mut body = String::new();
                for item in &taken {
                    if !body.is_empty() {
                        body.push(SEPARATOR);
                    }
                    match item {
                        Taken::Ping => body.push('2'),
                        Taken::Message(message) => encode_polling(message, &mut body),
                    }
                }
                if close.is_some() {
                    if !body.is_empty() {
                        body.push(SEPARATOR);
                    }
                    body.push('1');
                }
                if let Some(poll) = self.poll.take() {
                    let _ = poll.send(PollReply::Payload(body));
                }
                if close.is_some() {
                    ctx.stop();
                    return;
                }
            }
            State::Upgraded(socket) => {
                let socket = socket.clone();
                while self.outlet.has_output() {
                    let Ok(permit) = socket.try_reserve() else {
                        if socket.is_closed() {
                            ctx.stop();
                        } else {
                            self.wait_for_room(socket, ctx);
                        }
                        return;
                    };
                    let (taken, close) = self.take();
                    let packets = taken.into_iter().map(Taken::into_packet).collect();
                    permit.send(ToSocket::Packets(packets));
                    if let Some(code) = close {
                        let _ = socket.try_send(ToSocket::Close(code));
                        ctx.stop();
                        return;
                    }
                }
            }
            _ => {}
        }
        self.wait_for_output(ctx);
    }

    /// Flushes again once the outlet has something, if something can take it (a poll, an
    /// upgraded socket): otherwise the next poll flushes.
    fn wait_for_output(&mut self, ctx: &mut Context<Self>) {
        let taker = match self.state {
            State::Polling => self.poll.is_some(),
            State::Probing => false,
            State::Upgraded(_) => true,
        };
        if !taker || self.waiting || self.outlet.is_finished() {
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

    fn wait_for_room(&mut self, socket: mpsc::Sender<ToSocket>, ctx: &mut Context<Self>) {
        if self.waiting {
            return;
        }
        self.waiting = true;
        ctx.spawn(
            async move {
                let _ = socket.reserve().await;
            }
            .into_actor(self)
            .map(|(), session, ctx| {
                session.waiting = false;
                session.flush(ctx);
            }),
        );
    }

    /// Ends the session now: a waiting poll gets `code`'s packets and `1` (or `6` when
    /// the client itself closed), an upgraded socket the close.
    pub(super) fn shut(&mut self, code: CloseCode, client_closed: bool, ctx: &mut Context<Self>) {
        self.outlet.close(code);
        if let Some(poll) = self.poll.take() {
            let body = if client_closed { "6" } else { "1" };
            let _ = poll.send(PollReply::Payload(body.to_owned()));
        }
        if let State::Upgraded(socket) = &self.state {
            let _ = socket.try_send(ToSocket::Close(code));
        }
        ctx.stop();
    }

    /// The client's packets (a POST's, or the upgraded socket's).
    pub(super) fn packets(&mut self, packets: Vec<Packet>, ctx: &mut Context<Self>) -> bool {
        self.outlet.touch();
        for packet in packets {
            match packet {
                Packet::Message(message) => {
                    let result = self.app.as_mut().map_or(Ok(()), |app| app.message(message));
                    if let Err(code) = result {
                        self.shut(code, false, ctx);
                        return false;
                    }
                }
                Packet::Close => {
                    if self.poll.is_some() || matches!(self.state, State::Upgraded(_)) {
                        self.shut(CloseCode::Normal, true, ctx);
                    } else {
                        // The client may have a poll on its way (sent before the close):
                        // it gets `6`, as if it had come first.
                        self.client_closed = true;
                        ctx.run_later(PROBE_CHECK, |session, ctx| {
                            session.shut(CloseCode::Normal, true, ctx)
                        });
                    }
                    return true;
                }
                Packet::Pong | Packet::Ping(_) | Packet::Upgrade | Packet::Noop => {}
            }
        }
        true
    }

    /// Answers a poll held during the probe with `6` in a moment, unless the upgrade
    /// completed by then.
    pub(super) fn check_probe(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(PROBE_CHECK, |session, _| {
            if matches!(session.state, State::Probing) {
                if let Some(poll) = session.poll.take() {
                    let _ = poll.send(PollReply::Payload("6".to_owned()));
                }
            }
        });
    }

    /// Whether the session was silent for `pingInterval + pingTimeout` (its timer may
    /// not have run yet).
    pub(super) fn expired(&self) -> bool {
        self.deadline() <= tokio::time::Instant::now()
    }

    /// Silent for `pingInterval + pingTimeout`, and the last ping out for `pingTimeout`
    /// (a ping that went late gives the client its full time to answer).
    fn deadline(&self) -> tokio::time::Instant {
        let silent = self.outlet.last_seen() + self.config.silence_limit();
        match self.pinged {
            Some(pinged) => silent.max(pinged + self.config.ping_timeout),
            None => silent,
        }
    }

    /// Closes the session once it was silent for `pingInterval + pingTimeout`.
    fn watch(&mut self, ctx: &mut Context<Self>) {
        let wait = self
            .deadline()
            .saturating_duration_since(tokio::time::Instant::now());
        ctx.run_later(wait, |session, ctx| {
            if session.expired() {
                log::debug!("socket.io session {}: ping timeout", session.sid);
                session.shut(CloseCode::HeartbeatTimeout, false, ctx);
            } else {
                session.watch(ctx);
            }
        });
    }
}

/// One item taken from the outlet.
enum Taken {
    Ping,
    Message(EioMessage),
}

impl Taken {
    /// As an upgraded socket's outlet frame.
    fn into_packet(self) -> ByteString {
        match self {
            Taken::Ping => ByteString::from_static("2"),
            Taken::Message(EioMessage::Text(text)) => {
                let mut packet = String::with_capacity(text.len() + 1);
                packet.push('4');
                packet.push_str(&text);
                ByteString::from(packet)
            }
            Taken::Message(EioMessage::Binary(bytes)) => binary_frame(&bytes),
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.watch(ctx);
        ctx.run_later(self.config.connect_timeout, |session, ctx| {
            if !session.app.as_ref().is_none_or(|app| app.connected()) {
                log::debug!("socket.io session {}: no CONNECT in time", session.sid);
                session.shut(CloseCode::Other(4004, "Connect timeout"), false, ctx);
            }
        });
        self.wait_for_output(ctx);
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        self.sessions.remove(&self.sid, &ctx.address());
        if let Some(poll) = self.poll.take() {
            let _ = poll.send(PollReply::Payload("1".to_owned()));
        }
        if !self.outlet.is_closed() {
            self.outlet.close(CloseCode::GoingAway);
        }
        if let Some(mut app) = self.app.take() {
            app.closed();
        }
        self.outlet.finish();
        Running::Stop
    }
}

/// The sessions of one endpoint by sid, shared by every worker thread.
#[derive(Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<HashMap<Arc<str>, Addr<Session>>>>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Addr<Session>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live session `sid`.
    pub(crate) fn find(&self, sid: &str) -> Option<Addr<Session>> {
        self.lock()
            .get(sid)
            .filter(|addr| addr.connected())
            .cloned()
    }

    /// Adds a session; false if `max` are open already.
    pub(crate) fn insert(&self, sid: Arc<str>, session: Addr<Session>, max: usize) -> bool {
        let mut sessions = self.lock();
        if sessions.len() >= max {
            return false;
        }
        sessions.insert(sid, session);
        true
    }

    /// Whether there is room for one more session.
    pub(crate) fn has_room(&self, max: usize) -> bool {
        self.lock().len() < max
    }

    pub(super) fn remove(&self, sid: &str, session: &Addr<Session>) {
        let mut sessions = self.lock();
        if sessions.get(sid) == Some(session) {
            sessions.remove(sid);
        }
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
