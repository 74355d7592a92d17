//! The apps the Engine.IO and Socket.IO protocol suites expect (their README's reference
//! servers, in comet's terms), shared by `main.rs` and the Rust tests (`#[path]`).

use std::collections::HashSet;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::HttpRequest;
use comet::transport::socketio::eio::binary_frame;
use comet::transport::socketio::packet::{connect_error, Kind, Packet};
use comet::transport::socketio::{spawn_heartbeats, EioApp, EioConfig, EioMessage};
use comet::transport::sockjs::SessionSink;
use comet::CloseCode;
use serde_json::{json, Value};

/// The suites' figures: pings every 300 ms, 200 ms to answer, 1,000,000-byte payloads,
/// 1 s to connect.
pub fn suite_config() -> EioConfig {
    EioConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        connect_timeout: Duration::from_secs(1),
        ..EioConfig::default()
    }
}

/// How long the suite's app waits between the CONNECT answer and its `auth` event.
const AUTH_DELAY: Duration = Duration::from_millis(10);

fn write(sink: &SessionSink, message: &EioMessage) {
    let frame = match message {
        EioMessage::Text(text) => text.clone(),
        EioMessage::Binary(bytes) => binary_frame(bytes),
    };
    if let Err(err) = sink.send(frame) {
        log::debug!("testsrv: message dropped: {err}");
    }
}

/// Engine.IO's suite: every message back as it came.
pub struct EngineEcho(SessionSink);

impl EioApp for EngineEcho {
    fn message(&mut self, message: EioMessage) -> Result<(), CloseCode> {
        write(&self.0, &message);
        Ok(())
    }
}

/// Opens an [`EngineEcho`].
pub fn engine_echo(sink: SessionSink, _: &HttpRequest) -> Box<dyn EioApp> {
    spawn_heartbeats(&sink, suite_config().ping_interval);
    Box::new(EngineEcho(sink))
}

/// Socket.IO's suite: namespaces `/` and `/custom`; on connect it emits `auth` with the
/// CONNECT's payload; `message` comes back as `message-back`, `message-with-ack` is
/// acknowledged with its arguments, attachments included.
pub struct SocketIoEcho {
    sink: SessionSink,
    namespaces: HashSet<String>,
    /// A binary packet and the attachments that came so far.
    partial: Option<(Packet, Vec<Bytes>)>,
}

/// Opens a [`SocketIoEcho`].
pub fn socketio_echo(sink: SessionSink, _: &HttpRequest) -> Box<dyn EioApp> {
    spawn_heartbeats(&sink, suite_config().ping_interval);
    Box::new(SocketIoEcho {
        sink,
        namespaces: HashSet::new(),
        partial: None,
    })
}

impl SocketIoEcho {
    fn send(&self, packet: &Packet, attachments: &[Bytes]) {
        write(&self.sink, &EioMessage::Text(packet.encode().into()));
        for bytes in attachments {
            write(&self.sink, &EioMessage::Binary(bytes.clone()));
        }
    }

    fn handle(&mut self, packet: Packet, attachments: Vec<Bytes>) -> Result<(), CloseCode> {
        let invalid = CloseCode::Other(1002, "Invalid packet");
        match packet.kind {
            Kind::Connect => {
                if packet.nsp != "/" && packet.nsp != "/custom" {
                    self.send(&connect_error(&packet.nsp, "Invalid namespace", None), &[]);
                    return Ok(());
                }
                self.namespaces.insert(packet.nsp.clone());
                let sid = json!({ "sid": next_sid() });
                let answer = Packet {
                    nsp: packet.nsp.clone(),
                    ..Packet::new(Kind::Connect, Some(sid))
                };
                self.send(&answer, &[]);
                let auth = packet.data.unwrap_or_else(|| json!({}));
                let event = Packet {
                    nsp: packet.nsp,
                    ..Packet::new(Kind::Event, Some(json!(["auth", auth])))
                };
                // The suite's client (ws 8.5) emits the messages of one read in one go,
                // before its test listens for the next: the `auth` event must come in a
                // write of its own, after the CONNECT answer's, as Node's server happens to
                // write them.
                let sink = self.sink.clone();
                actix_web::rt::spawn(async move {
                    tokio::time::sleep(AUTH_DELAY).await;
                    write(&sink, &EioMessage::Text(event.encode().into()));
                });
            }
            _ if self.namespaces.is_empty() => return Err(invalid),
            Kind::Disconnect => {
                self.namespaces.remove(&packet.nsp);
            }
            Kind::Event | Kind::BinaryEvent => {
                let Some((name, args)) = packet.event() else {
                    return Err(invalid);
                };
                let binary = packet.kind == Kind::BinaryEvent;
                let answer = match (name, packet.id) {
                    ("message", _) => {
                        let mut items = vec![Value::from("message-back")];
                        items.extend(args.iter().cloned());
                        let kind = if binary {
                            Kind::BinaryEvent
                        } else {
                            Kind::Event
                        };
                        Packet {
                            nsp: packet.nsp.clone(),
                            attachments: packet.attachments,
                            ..Packet::new(kind, Some(Value::Array(items)))
                        }
                    }
                    ("message-with-ack", Some(id)) => {
                        let kind = if binary { Kind::BinaryAck } else { Kind::Ack };
                        Packet {
                            nsp: packet.nsp.clone(),
                            id: Some(id),
                            attachments: packet.attachments,
                            ..Packet::new(kind, Some(Value::Array(args.to_vec())))
                        }
                    }
                    _ => return Ok(()),
                };
                self.send(&answer, &attachments);
            }
            Kind::Ack | Kind::BinaryAck => {}
            Kind::ConnectError => return Err(invalid),
        }
        Ok(())
    }
}

/// A socket id, unique in the process (the suite checks it is a string).
fn next_sid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("s{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl EioApp for SocketIoEcho {
    fn message(&mut self, message: EioMessage) -> Result<(), CloseCode> {
        let invalid = CloseCode::Other(1002, "Invalid packet");
        match message {
            EioMessage::Binary(bytes) => {
                let Some((packet, mut attachments)) = self.partial.take() else {
                    return Err(invalid);
                };
                attachments.push(bytes);
                if attachments.len() < packet.attachments {
                    self.partial = Some((packet, attachments));
                    return Ok(());
                }
                self.handle(packet, attachments)
            }
            EioMessage::Text(text) => {
                if self.partial.is_some() {
                    return Err(invalid);
                }
                let packet = Packet::parse(&text).map_err(|_| invalid)?;
                if packet.attachments > 0 {
                    self.partial = Some((packet, Vec::new()));
                    return Ok(());
                }
                self.handle(packet, Vec::new())
            }
        }
    }

    fn connected(&self) -> bool {
        !self.namespaces.is_empty()
    }
}
