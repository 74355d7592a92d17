//! What a long-polling session is told: polls, posts, and what the WebSocket that
//! upgrades it says (`upgrade.rs`). The session itself is in `session.rs`.

use actix::prelude::*;
use comet_actors::CloseCode;
use tokio::sync::{mpsc, oneshot};

use super::eio::Packet;
use super::session::{PollReply, Session, State, ToSocket};

/// A poll (`GET`).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Poll(pub(crate) oneshot::Sender<PollReply>);

impl Handler<Poll> for Session {
    type Result = ();

    fn handle(&mut self, Poll(poll): Poll, ctx: &mut Context<Self>) {
        if self.client_closed {
            let _ = poll.send(PollReply::Payload("6".to_owned()));
            self.shut(CloseCode::Normal, true, ctx);
            return;
        }
        if self.expired() {
            let _ = poll.send(PollReply::Refused);
            self.shut(CloseCode::HeartbeatTimeout, false, ctx);
            return;
        }
        self.outlet.touch();
        match self.state {
            State::Upgraded(_) => {
                let _ = poll.send(PollReply::Refused);
            }
            State::Probing => {
                // A client that upgrades polls no more; one that does is held a moment,
                // as Engine.IO's own server holds it, and gets `6` unless the upgrade
                // completes first (then 400).
                if self.poll.replace(poll).is_some() {
                    log::debug!("socket.io session {}: two polls at once", self.sid);
                }
                self.check_probe(ctx);
            }
            State::Polling => {
                if self.poll.as_ref().is_some_and(|p| !p.is_closed()) {
                    log::debug!("socket.io session {}: two polls at once", self.sid);
                    let _ = poll.send(PollReply::Refused);
                    self.shut(CloseCode::Other(1002, "Duplicate poll"), false, ctx);
                    return;
                }
                self.poll = Some(poll);
                self.poll_late = self.upgrader.is_some();
                self.flush(ctx);
            }
        }
    }
}

/// A `POST`'s packets; false if they broke the protocol (the session is closed).
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Post(pub(crate) Vec<Packet>);

impl Handler<Post> for Session {
    type Result = bool;

    fn handle(&mut self, Post(packets): Post, ctx: &mut Context<Self>) -> bool {
        if matches!(self.state, State::Upgraded(_)) {
            return false;
        }
        if self.expired() {
            self.shut(CloseCode::HeartbeatTimeout, false, ctx);
            return false;
        }
        self.packets(packets, ctx)
    }
}

/// The client broke the protocol (a bad body): the session is closed.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Kill;

impl Handler<Kill> for Session {
    type Result = ();

    fn handle(&mut self, _: Kill, ctx: &mut Context<Self>) {
        self.shut(CloseCode::Other(1002, "Invalid packet"), false, ctx);
    }
}

/// What the upgrading WebSocket `id` tells the session.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) enum FromSocket {
    /// It would upgrade the session: true if it may (no other socket did).
    Claim(u64),
    /// It answered `2probe`.
    Probe(u64),
    /// `5`: from now on the session's packets go to `socket`.
    Upgrade(u64, mpsc::Sender<ToSocket>),
    /// The client's packets.
    Packets(u64, Vec<Packet>),
    /// The socket is gone.
    Gone(u64),
}

impl Handler<FromSocket> for Session {
    type Result = bool;

    fn handle(&mut self, message: FromSocket, ctx: &mut Context<Self>) -> bool {
        if !matches!(message, FromSocket::Gone(_)) {
            self.outlet.touch();
        }
        let upgrader = self.upgrader;
        let mine = move |id: u64| upgrader == Some(id);
        match message {
            FromSocket::Claim(id) => {
                if self.upgrader.is_some() || matches!(self.state, State::Upgraded(_)) {
                    return false;
                }
                self.upgrader = Some(id);
                true
            }
            FromSocket::Probe(id) if mine(id) => {
                if matches!(self.state, State::Polling) {
                    self.state = State::Probing;
                }
                if self.poll_late {
                    self.check_probe(ctx);
                } else if let Some(poll) = self.poll.take() {
                    let _ = poll.send(PollReply::Payload("6".to_owned()));
                }
                true
            }
            FromSocket::Upgrade(id, socket) if mine(id) => {
                if let Some(poll) = self.poll.take() {
                    let _ = poll.send(PollReply::Refused);
                }
                log::debug!("socket.io session {}: upgraded to websocket", self.sid);
                self.state = State::Upgraded(socket);
                self.flush(ctx);
                true
            }
            FromSocket::Packets(id, packets) if mine(id) => {
                if matches!(self.state, State::Upgraded(_)) {
                    self.packets(packets, ctx)
                } else {
                    self.outlet.touch();
                    true
                }
            }
            FromSocket::Gone(id) if mine(id) => {
                self.upgrader = None;
                match self.state {
                    State::Upgraded(_) => self.shut(CloseCode::Normal, true, ctx),
                    State::Probing => self.state = State::Polling,
                    State::Polling => {}
                }
                true
            }
            _ => false,
        }
    }
}
