//! The WebSocket that upgrades a long-polling session (`transport=websocket&sid=…`).
//!
//! It answers `2probe` with `3probe` itself and tells the session, which answers a
//! waiting poll with `6` (noop) and every later one too; on `5` the session hands it its
//! traffic: the client's packets go to the session, and the session's encoded packets
//! come back through a bounded channel into this socket's own outlet, which the one
//! WebSocket engine drains ([`UpgradeFraming`]). The session may live on another worker
//! thread than the socket: only the channel and actor messages cross.

use std::sync::atomic::{AtomicU64, Ordering};

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use comet_actors::{CloseCode, Limits, Outlet};
use tokio::sync::mpsc;

use super::eio::{decode_frame, decode_text, EioMessage, Packet};
use super::framing::UpgradeFraming;
use super::requests::FromSocket;
use super::session::{Session, ToSocket};
use crate::transport::service::SessionHandler;
use crate::transport::socket;

/// Batches of packets that may wait between the session and its socket.
const CHANNEL_BATCHES: usize = 16;

static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

/// Upgrades `session` to the WebSocket of `req`, or answers 400 if another socket did.
pub(crate) async fn upgrade(
    req: HttpRequest,
    payload: web::Payload,
    session: Addr<Session>,
    limits: &Limits,
) -> actix_web::Result<HttpResponse> {
    let id = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
    if !session.send(FromSocket::Claim(id)).await.unwrap_or(false) {
        // Another socket upgrades it: this one is accepted and closed at once, as
        // Engine.IO does.
        let outlet = Outlet::new(limits);
        outlet.close(CloseCode::Other(1002, "Session already upgraded"));
        return socket::serve_with(&req, payload, UpgradeFraming, outlet, limits, |_, _| {
            Box::new(Refused)
        });
    }
    let outlet = Outlet::new(limits);
    let (to_socket, from_session) = mpsc::channel(CHANNEL_BATCHES);
    let upgrader = Upgrader {
        session: session.clone(),
        id,
        outlet: outlet.clone(),
        to_socket: Some(to_socket),
        upgraded: false,
    };
    let served = socket::serve_with(
        &req,
        payload,
        UpgradeFraming,
        outlet.clone(),
        limits,
        |_, _| Box::new(upgrader),
    );
    match served {
        Ok(response) => {
            actix_web::rt::spawn(pump(from_session, outlet));
            Ok(response)
        }
        Err(err) => {
            session.do_send(FromSocket::Gone(id));
            Err(err)
        }
    }
}

/// Moves what the session sends into the socket's outlet.
async fn pump(mut from_session: mpsc::Receiver<ToSocket>, outlet: Outlet) {
    while let Some(item) = from_session.recv().await {
        match item {
            ToSocket::Packets(packets) => {
                for packet in packets {
                    if outlet.send(packet).is_err() {
                        return;
                    }
                }
            }
            ToSocket::Close(code) => {
                outlet.close(code);
                return;
            }
        }
    }
    outlet.close(CloseCode::Normal);
}

/// A socket refused: it hears nothing.
struct Refused;

impl SessionHandler for Refused {
    fn message(&mut self, _: ByteString) {}
}

/// The socket's side: the client's packets, to the session.
struct Upgrader {
    session: Addr<Session>,
    id: u64,
    outlet: Outlet,
    /// Given to the session on `5`.
    to_socket: Option<mpsc::Sender<ToSocket>>,
    upgraded: bool,
}

impl Upgrader {
    fn forward(&self, packet: Packet) {
        self.session
            .do_send(FromSocket::Packets(self.id, vec![packet]));
    }
}

impl SessionHandler for Upgrader {
    fn message(&mut self, message: ByteString) {
        if let Some(bytes) = decode_frame(&message) {
            if self.upgraded {
                self.forward(Packet::Message(EioMessage::Binary(bytes)));
            }
            return;
        }
        match decode_text(message) {
            Ok(Packet::Ping(probe)) if &*probe == "probe" => {
                let _ = self.outlet.send(ByteString::from_static("3probe"));
                self.session.do_send(FromSocket::Probe(self.id));
            }
            Ok(Packet::Upgrade) => {
                if let Some(socket) = self.to_socket.take() {
                    self.upgraded = true;
                    self.session.do_send(FromSocket::Upgrade(self.id, socket));
                }
            }
            Ok(Packet::Close) => {
                self.forward(Packet::Close);
                self.outlet.close(CloseCode::Normal);
            }
            Ok(packet) => {
                if self.upgraded {
                    self.forward(packet);
                } else {
                    // Still polling: a pong or a message here would be out of order.
                    self.forward(Packet::Noop);
                }
            }
            Err(err) => {
                log::debug!("socket.io upgrade: {err}; closing");
                self.outlet.close(CloseCode::Other(1002, "Invalid packet"));
            }
        }
    }

    fn closed(&mut self) {
        self.session.do_send(FromSocket::Gone(self.id));
    }
}
