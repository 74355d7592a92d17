//! Comet's model in Socket.IO's words: each Socket.IO client (main namespace) is a comet
//! `Connection`, spoken to in jii frames.
//!
//! | the client emits | the connection gets |
//! | --- | --- |
//! | CONNECT `/` with `auth: {token}` | `auth <token>` first; the CONNECT is answered when `authenticated` comes (a refusal: CONNECT_ERROR `{"message":…,"data":{"code":…}}`) |
//! | CONNECT `/` without a token | nothing; answered `{"sid":…}` at once |
//! | CONNECT to another namespace | nothing; CONNECT_ERROR `{"message":"Invalid namespace"}` |
//! | `"subscribe", channel[, options][, ack]` | `subscribe <channel>[ <options JSON>]`; the ack gets `{"channel":…}` with `subscribed`, or `{"error":{"code","message"}}` |
//! | `"unsubscribe", channel[, ack]` | `unsubscribe <channel>`; the ack gets `{"channel":…}` with `unsubscribed` |
//! | `"channel", channel, payload[, ack]` | `channel <channel> <payload>` (a string as it is, anything else as its JSON); the ack gets `{"channel":…}` at once |
//! | `"action", route[, params], ack` | `action <route> {"requestUid":…, params…}`; the ack gets the answer (without `requestUid`) |
//! | `"auth", token[, ack]` | `auth <token>` (a refresh); the ack gets the `authenticated` object |
//! | `"history", channel[, options], ack` | `history <channel> {"requestUid":…, options…}` (`since`, `limit`); the ack gets the answer (`{"publications":[…],"offset":…,"epoch":…}`, without `requestUid`) |
//! | `"presence", channel[, ack]` | `presence <channel> {"requestUid":…}`; the ack gets the answer (`{"clients":{…}}`, without `requestUid`) |
//! | `"presence_stats", channel[, ack]` | `presence_stats <channel> {"requestUid":…}`; the ack gets `{"clients":…,"users":…}` |
//! | `"hello"[, options]` | `hello <options JSON>`; the answer comes as event `comet:hello` |
//! | DISCONNECT | the session closes |
//!
//! What the connection writes goes the other way in `comet/outbound.rs`. A refusal of the
//! mapping itself (a channel that is not a string, binary attachments, an unknown
//! event) answers the event's ack with `{"error":…}`, or without one emits `comet:error`.

mod outbound;

use std::collections::{HashMap, VecDeque};

use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::{CloseCode, Outlet};
use serde_json::{json, Map, Value};

use super::app::{new_sid, EioApp, EioService};
use super::eio::EioMessage;
use super::packet::{connect_error, Kind, Packet};
use crate::transport::service::{SessionHandler, SessionSink, SockJsService};
use crate::transport::sockjs::ConnectionService;

/// The first character of an outlet frame that is a Socket.IO packet the app wrote
/// itself (no jii frame starts with it).
pub(super) const RAW: char = '\x01';

/// Comet's Socket.IO service: a comet [`Connection`](comet_actors::Connection) per
/// Socket.IO client, through [`ConnectionService`].
pub struct CometSocketIo(pub ConnectionService);

impl EioService for CometSocketIo {
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn EioApp> {
        let outlet = sink.outlet().clone();
        Box::new(CometApp::new(self.0.open(sink, request), outlet))
    }
}

/// Where the Socket.IO handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// No CONNECT yet: only a CONNECT is taken.
    AwaitConnect,
    /// CONNECT with a token: waiting for `authenticated`.
    AwaitAuth,
    /// Connected to the main namespace.
    Connected,
}

/// One Socket.IO client's side of its comet connection.
pub(super) struct CometApp {
    connection: Box<dyn SessionHandler>,
    outlet: Outlet,
    /// The Socket.IO socket id of the CONNECT answer.
    pub(super) sid: String,
    pub(super) phase: Phase,
    /// A binary packet waiting for this many more attachments (and its ack id).
    binary: Option<(usize, Option<u64>)>,
    /// Acks waiting for `subscribed <channel>` / `unsubscribed <channel>`, in order.
    pub(super) subscribes: HashMap<String, VecDeque<u64>>,
    pub(super) unsubscribes: HashMap<String, VecDeque<u64>>,
    /// The calls and presence requests made: requestUid to the ack id that waits (none:
    /// answer dropped).
    pub(super) actions: HashMap<String, Option<u64>>,
    /// Acks waiting for `authenticated`.
    pub(super) auths: VecDeque<u64>,
    next_uid: u64,
}

/// A channel or route the jii frame can carry: not empty, no whitespace or control
/// characters (the connection checks the length).
fn plain_name(value: Option<&Value>) -> Option<&str> {
    let name = value?.as_str()?;
    let ok = !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(name)
}

impl CometApp {
    /// The app of a client whose comet connection is `connection`, writing to `outlet`.
    pub(super) fn new(connection: Box<dyn SessionHandler>, outlet: Outlet) -> CometApp {
        CometApp {
            connection,
            outlet,
            sid: new_sid(),
            phase: Phase::AwaitConnect,
            binary: None,
            subscribes: HashMap::new(),
            unsubscribes: HashMap::new(),
            actions: HashMap::new(),
            auths: VecDeque::new(),
            next_uid: 1,
        }
    }

    /// Writes a Socket.IO packet of the app's own into the outlet, in order with the
    /// connection's frames.
    pub(super) fn emit_raw(&self, packet: &Packet) {
        let mut frame = String::new();
        frame.push(RAW);
        frame.push_str(&packet.encode());
        let _ = self.outlet.send(ByteString::from(frame));
    }

    fn tell(&mut self, frame: String) {
        self.connection.message(ByteString::from(frame));
    }

    /// The CONNECT answer: `{"sid":…}`.
    pub(super) fn connect_ok(&mut self) -> Packet {
        self.phase = Phase::Connected;
        Packet::new(Kind::Connect, Some(json!({ "sid": self.sid })))
    }

    /// Refuses an event: its ack gets `{"error":…}`, or `comet:error` is emitted.
    fn refuse(&self, id: Option<u64>, code: &str, message: &str, channel: Option<&str>) {
        let mut error = json!({ "code": code, "message": message });
        if let (Some(channel), Value::Object(map)) = (channel, &mut error) {
            map.insert("channel".into(), Value::from(channel));
        }
        let packet = match id {
            Some(id) => Packet {
                id: Some(id),
                ..Packet::new(Kind::Ack, Some(json!([{ "error": error }])))
            },
            None => Packet::new(Kind::Event, Some(json!(["comet:error", error]))),
        };
        self.emit_raw(&packet);
    }

    fn ack(&self, id: Option<u64>, value: Value) {
        if let Some(id) = id {
            self.emit_raw(&Packet {
                id: Some(id),
                ..Packet::new(Kind::Ack, Some(Value::Array(vec![value])))
            });
        }
    }

    /// A new `requestUid` for a request whose answer (an `action` frame) goes to the ack
    /// `id` (none: the answer is dropped).
    fn request_uid(&mut self, id: Option<u64>) -> String {
        let uid = format!("sio{}", self.next_uid);
        self.next_uid += 1;
        self.actions.insert(uid.clone(), id);
        uid
    }

    fn connect(&mut self, packet: Packet) {
        if packet.nsp != "/" {
            self.emit_raw(&connect_error(&packet.nsp, "Invalid namespace", None));
            return;
        }
        if self.phase == Phase::AwaitAuth {
            return;
        }
        let token = packet
            .data
            .as_ref()
            .and_then(|auth| auth.get("token"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|token| !token.is_empty());
        match token {
            Some(token) if self.phase == Phase::AwaitConnect => {
                self.phase = Phase::AwaitAuth;
                self.tell(format!("auth {token}"));
            }
            _ => {
                let answer = self.connect_ok();
                self.emit_raw(&answer);
            }
        }
    }

    fn event(&mut self, name: &str, args: &[Value], id: Option<u64>) {
        match name {
            "subscribe" | "unsubscribe" => {
                let Some(channel) = plain_name(args.first()) else {
                    return self.refuse(
                        id,
                        "bad_channel",
                        "the channel must be a string without spaces",
                        None,
                    );
                };
                let mut frame = format!("{name} {channel}");
                if let (true, Some(options @ Value::Object(_))) = (name == "subscribe", args.get(1))
                {
                    frame.push(' ');
                    frame.push_str(&options.to_string());
                }
                if let Some(id) = id {
                    let waiting = if name == "subscribe" {
                        &mut self.subscribes
                    } else {
                        &mut self.unsubscribes
                    };
                    waiting.entry(channel.to_owned()).or_default().push_back(id);
                }
                self.tell(frame);
            }
            "channel" => {
                let Some(channel) = plain_name(args.first()) else {
                    return self.refuse(
                        id,
                        "bad_channel",
                        "the channel must be a string without spaces",
                        None,
                    );
                };
                let payload = match args.get(1) {
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let frame = format!("channel {channel} {payload}");
                self.ack(id, json!({ "channel": channel }));
                self.tell(frame);
            }
            "action" | "history" => {
                // `action <route> {…}` and `history <channel> {…}`: a request with params.
                let (code, subject, what) = if name == "action" {
                    ("bad_route", "the route", "an action's params")
                } else {
                    ("bad_channel", "the channel", "the history's options")
                };
                let Some(target) = plain_name(args.first()) else {
                    let message = format!("{subject} must be a string without spaces");
                    return self.refuse(id, code, &message, None);
                };
                let mut params = match args.get(1) {
                    Some(Value::Object(params)) => params.clone(),
                    None | Some(Value::Null) => Map::new(),
                    Some(_) => {
                        let message = format!("{what} must be an object");
                        return self.refuse(id, "bad_json", &message, None);
                    }
                };
                params.remove("requestUid");
                let uid = self.request_uid(id);
                let rest = Value::Object(params).to_string();
                let json = match &rest[1..] {
                    "}" => format!("{{\"requestUid\":\"{uid}\"}}"),
                    tail => format!("{{\"requestUid\":\"{uid}\",{tail}"),
                };
                self.tell(format!("{name} {target} {json}"));
            }
            "presence" | "presence_stats" => {
                let Some(channel) = plain_name(args.first()) else {
                    return self.refuse(
                        id,
                        "bad_channel",
                        "the channel must be a string without spaces",
                        None,
                    );
                };
                let uid = self.request_uid(id);
                self.tell(format!("{name} {channel} {{\"requestUid\":\"{uid}\"}}"));
            }
            "hello" => {
                let options = match args.first() {
                    Some(options @ Value::Object(_)) => options.to_string(),
                    _ => "{}".to_owned(),
                };
                self.tell(format!("hello {options}"));
            }
            "auth" => match args.first().and_then(Value::as_str).map(str::trim) {
                Some(token) if !token.is_empty() && !token.contains(['\n', '\r']) => {
                    if let Some(id) = id {
                        self.auths.push_back(id);
                    }
                    self.tell(format!("auth {token}"));
                }
                _ => self.refuse(id, "bad_frame", "`auth` takes the token, a string", None),
            },
            other => {
                let message = format!(
                    "unknown event `{other}`: comet takes subscribe, unsubscribe, channel, action, history, presence, presence_stats, auth and hello"
                );
                self.refuse(id, "bad_frame", &message, None);
            }
        }
    }
}

impl EioApp for CometApp {
    fn message(&mut self, message: EioMessage) -> Result<(), CloseCode> {
        let invalid = CloseCode::Other(1002, "Invalid packet");
        let text = match message {
            EioMessage::Binary(_) => {
                let Some((left, id)) = self.binary.as_mut() else {
                    return Err(invalid);
                };
                *left -= 1;
                if *left == 0 {
                    let id = *id;
                    self.binary = None;
                    self.refuse(
                        id,
                        "bad_frame",
                        "binary attachments are not accepted: comet's channels carry text",
                        None,
                    );
                }
                return Ok(());
            }
            EioMessage::Text(text) => text,
        };
        if self.binary.is_some() {
            return Err(invalid);
        }
        let packet = Packet::parse(&text).map_err(|err| {
            log::debug!("socket.io: {err}; closing");
            invalid
        })?;
        if packet.kind == Kind::Connect {
            self.connect(packet);
            return Ok(());
        }
        if self.phase == Phase::AwaitConnect {
            return Err(invalid);
        }
        if packet.nsp != "/" {
            return Ok(());
        }
        match packet.kind {
            Kind::Disconnect => Err(CloseCode::Normal),
            Kind::Event => {
                if let Some((name, args)) = packet.event() {
                    self.event(name, args, packet.id);
                }
                Ok(())
            }
            Kind::BinaryEvent | Kind::BinaryAck if packet.attachments > 0 => {
                let id = (packet.kind == Kind::BinaryEvent)
                    .then_some(packet.id)
                    .flatten();
                self.binary = Some((packet.attachments, id));
                Ok(())
            }
            Kind::BinaryEvent => {
                self.refuse(
                    packet.id,
                    "bad_frame",
                    "binary attachments are not accepted: comet's channels carry text",
                    None,
                );
                Ok(())
            }
            Kind::Ack | Kind::BinaryAck => Ok(()),
            Kind::Connect | Kind::ConnectError => Err(invalid),
        }
    }

    fn outbound(&mut self, frame: ByteString, out: &mut dyn FnMut(EioMessage)) {
        outbound::translate(self, frame, out);
    }

    fn closing(&mut self, code: CloseCode, out: &mut dyn FnMut(EioMessage)) {
        outbound::closing(self, code, out);
    }

    fn connected(&self) -> bool {
        self.phase != Phase::AwaitConnect
    }

    fn closed(&mut self) {
        self.connection.closed();
    }
}
