//! Engine.IO on the one WebSocket engine (`transport/socket.rs`), two framings:
//!
//! - [`EioFraming`], a WebSocket session (`transport=websocket` without `sid`): the
//!   session is the socket. The client gets the open packet first, each outlet frame as
//!   the app translates it (`4<text>` text messages, binary messages as they are), `2` as
//!   the heartbeat, and the close; its `4…` and binary messages go to the app, `1` closes.
//!   A watchdog task closes it after `pingInterval + pingTimeout` of silence, or when
//!   the app has not connected by `connect_timeout`.
//! - [`UpgradeFraming`], a WebSocket that upgrades a long-polling session (with `sid`):
//!   its outlet holds Engine.IO packets that the polling session (`session.rs`, perhaps
//!   on another thread) already encoded, so it writes them as they are.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::{CloseCode, Outlet};

use super::app::{EioApp, EioConfig, EioService};
use super::cache::Cache;
use super::eio::{decode_frame, decode_text, EioMessage, Packet};
use crate::transport::service::{SessionHandler, SessionSink};
use crate::transport::socket::{Framing, Writer};

/// The app of one WebSocket session, shared by its framing's writer and reader.
pub(crate) struct Shared {
    app: RefCell<Option<Box<dyn EioApp>>>,
    handshake: ByteString,
}

impl Shared {
    fn with_app<R>(&self, f: impl FnOnce(&mut dyn EioApp) -> R) -> Option<R> {
        let mut app = self.app.try_borrow_mut().ok()?;
        app.as_mut().map(|app| f(&mut **app))
    }

    /// Tells the app, once, that the session is over.
    fn end(&self) {
        let app = self
            .app
            .try_borrow_mut()
            .ok()
            .and_then(|mut app| app.take());
        if let Some(mut app) = app {
            app.closed();
        }
    }
}

/// Engine.IO framing of a WebSocket session.
#[derive(Clone)]
pub(crate) struct EioFraming(pub(crate) Rc<Shared>);

impl EioFraming {
    /// A framing whose open packet is `handshake`; [`Opener`] puts the app in.
    pub(crate) fn new(handshake: String) -> EioFraming {
        EioFraming(Rc::new(Shared {
            app: RefCell::new(None),
            handshake: ByteString::from(handshake),
        }))
    }
}

thread_local! {
    /// The `4…` packets of recent messages on this thread (see `cache.rs`): a fan-out's
    /// event, translated once per thread, is framed once too.
    static PACKETS: RefCell<Cache> = RefCell::new(Cache::default());
}

fn write(out: &mut Writer<'_>, message: EioMessage) {
    match message {
        EioMessage::Text(text) => {
            let packet = PACKETS.with(|packets| {
                Cache::get(packets, &text, || {
                    let mut packet = String::with_capacity(text.len() + 1);
                    packet.push('4');
                    packet.push_str(&text);
                    ByteString::from(packet)
                })
            });
            out.text(packet);
        }
        EioMessage::Binary(bytes) => out.binary(bytes),
    }
}

impl Framing for EioFraming {
    fn name(&self) -> &'static str {
        "socketio-websocket"
    }

    fn open(&self, out: &mut Writer<'_>) {
        out.text(self.0.handshake.clone());
    }

    fn heartbeat(&self, out: &mut Writer<'_>) {
        out.text(ByteString::from_static("2"));
    }

    fn frames(&self, frames: &[ByteString], out: &mut Writer<'_>) {
        self.0.with_app(|app| {
            for frame in frames {
                app.outbound(frame.clone(), &mut |message| write(out, message));
            }
        });
    }

    fn close(&self, code: CloseCode, out: &mut Writer<'_>) {
        self.0
            .with_app(|app| app.closing(code, &mut |message| write(out, message)));
        out.close(code);
    }

    fn decode(
        &self,
        text: ByteString,
        _deliver: &mut dyn FnMut(ByteString),
    ) -> Result<(), CloseCode> {
        match decode_text(text) {
            Ok(Packet::Message(message)) => self
                .0
                .with_app(|app| app.message(message))
                .unwrap_or(Ok(())),
            Ok(Packet::Close) => Err(CloseCode::Normal),
            Ok(Packet::Pong | Packet::Ping(_) | Packet::Noop | Packet::Upgrade) => Ok(()),
            Err(err) => {
                log::debug!("socket.io websocket: {err}; closing");
                Err(CloseCode::Other(1002, "Invalid packet"))
            }
        }
    }

    fn decode_binary(
        &self,
        bytes: &Bytes,
        _deliver: &mut dyn FnMut(ByteString),
    ) -> Option<Result<(), CloseCode>> {
        let message = EioMessage::Binary(bytes.clone());
        Some(
            self.0
                .with_app(|app| app.message(message))
                .unwrap_or(Ok(())),
        )
    }
}

/// Opens the Engine.IO app of a WebSocket session into `framing` (the engine calls it
/// with the session's sink), and starts the session's watchdog.
pub(crate) fn open_app(
    framing: &EioFraming,
    service: &dyn EioService,
    config: Arc<EioConfig>,
    sink: SessionSink,
    request: &HttpRequest,
) -> Box<dyn SessionHandler> {
    let outlet = sink.outlet().clone();
    let app = service.open(sink, request);
    *framing.0.app.borrow_mut() = Some(app);
    actix_web::rt::spawn(watchdog(outlet, framing.0.clone(), config));
    Box::new(Ender(framing.0.clone()))
}

/// Tells the app when the socket ends.
struct Ender(Rc<Shared>);

impl SessionHandler for Ender {
    fn message(&mut self, _: ByteString) {}

    fn closed(&mut self) {
        self.0.end();
    }
}

/// Closes a WebSocket session that went silent for `pingInterval + pingTimeout` (4000,
/// as comet's heartbeat timeout), or whose app did not connect in `connect_timeout`
/// (4004).
async fn watchdog(outlet: Outlet, shared: Rc<Shared>, config: Arc<EioConfig>) {
    let limit = config.silence_limit();
    let connect_by = tokio::time::Instant::now() + config.connect_timeout;
    let mut connected = false;
    loop {
        let silent_by = outlet.last_seen() + limit;
        let next = if connected {
            silent_by
        } else {
            silent_by.min(connect_by)
        };
        tokio::time::sleep_until(next).await;
        if outlet.is_closed() {
            return;
        }
        let now = tokio::time::Instant::now();
        if !connected && now >= connect_by {
            connected = shared.with_app(|app| app.connected()).unwrap_or(true);
            if !connected {
                log::debug!("socket.io: no CONNECT in time; closing");
                outlet.close(CloseCode::Other(4004, "Connect timeout"));
                return;
            }
        }
        if outlet.last_seen() + limit <= now {
            log::debug!("socket.io: ping timeout; closing");
            outlet.close(CloseCode::HeartbeatTimeout);
            shared.end();
            return;
        }
    }
}

/// Writes the Engine.IO packets a polling session encoded (binary ones as
/// [`binary_frame`](super::eio::binary_frame)s); hands the client's packets to `on_packet`.
#[derive(Clone, Copy)]
pub(crate) struct UpgradeFraming;

impl Framing for UpgradeFraming {
    fn name(&self) -> &'static str {
        "socketio-websocket"
    }

    fn heartbeat(&self, _: &mut Writer<'_>) {}

    fn frames(&self, frames: &[ByteString], out: &mut Writer<'_>) {
        for frame in frames {
            match decode_frame(frame) {
                Some(bytes) => out.binary(bytes),
                None => out.text(frame.clone()),
            }
        }
    }

    fn decode(
        &self,
        text: ByteString,
        deliver: &mut dyn FnMut(ByteString),
    ) -> Result<(), CloseCode> {
        // The handler (`session::Upgrader`) decodes: it needs to answer the probe.
        deliver(text);
        Ok(())
    }

    fn decode_binary(
        &self,
        bytes: &Bytes,
        deliver: &mut dyn FnMut(ByteString),
    ) -> Option<Result<(), CloseCode>> {
        deliver(super::eio::binary_frame(bytes));
        Some(Ok(()))
    }
}
