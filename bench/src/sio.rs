//! jii frames over comet's Socket.IO transport (`<prefix>/socket.io/`, Engine.IO's
//! WebSocket), for `--transport socketio`: the workloads keep sending and reading jii
//! frames, this file turns them into the Socket.IO events of docs/PROTOCOL.md ("Socket.IO")
//! and back. Channel payloads are sent as strings (the server publishes them as they are)
//! and arrive as the raw JSON the server embeds (no re-encoding here).

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;

/// What an ack answers.
enum Waiting {
    Subscribe(String),
    Unsubscribe(String),
    /// An action call: its requestUid, put back into the answer.
    Action(Value),
}

/// What a message from the server is for the workload.
pub enum Incoming {
    /// A jii frame.
    Frame(String),
    /// A ping: answer `3`.
    Ping,
    /// The server closes.
    Close,
    /// Nothing for the workload.
    Nothing,
}

/// One connection's acks in flight.
#[derive(Default)]
pub struct Sio {
    next_id: u64,
    waiting: HashMap<u64, Waiting>,
}

fn split(text: &str) -> (&str, &str) {
    text.split_once(' ').unwrap_or((text, ""))
}

impl Sio {
    fn ask(&mut self, waiting: Waiting) -> u64 {
        self.next_id += 1;
        self.waiting.insert(self.next_id, waiting);
        self.next_id
    }

    /// The Engine.IO message for a jii frame.
    pub fn outgoing(&mut self, frame: &str) -> String {
        let (keyword, rest) = split(frame);
        let quote = |s: &str| Value::from(s).to_string();
        match keyword {
            "subscribe" => {
                let id = self.ask(Waiting::Subscribe(rest.to_owned()));
                format!("42{id}[\"subscribe\",{}]", quote(rest))
            }
            "unsubscribe" => {
                let id = self.ask(Waiting::Unsubscribe(rest.to_owned()));
                format!("42{id}[\"unsubscribe\",{}]", quote(rest))
            }
            "channel" => {
                let (channel, payload) = split(rest);
                format!("42[\"channel\",{},{}]", quote(channel), quote(payload))
            }
            "action" => {
                let (route, json) = split(rest);
                let mut params: serde_json::Map<String, Value> =
                    serde_json::from_str(json).unwrap_or_default();
                let uid = params.remove("requestUid").unwrap_or(Value::Null);
                let id = self.ask(Waiting::Action(uid));
                format!(
                    "42{id}[\"action\",{},{}]",
                    quote(route),
                    Value::Object(params)
                )
            }
            _ => format!("42[{},{}]", quote(keyword), quote(rest)),
        }
    }

    /// What an Engine.IO text message from the server is.
    pub fn incoming(&mut self, text: &str) -> Incoming {
        match text.as_bytes().first() {
            Some(b'2') => return Incoming::Ping,
            Some(b'1') => return Incoming::Close,
            Some(b'4') => {}
            _ => return Incoming::Nothing,
        }
        let packet = &text[1..];
        if let Some(event) = packet.strip_prefix('2') {
            if let Ok((name, channel, payload)) =
                serde_json::from_str::<(String, String, &RawValue)>(event)
            {
                if name == "channel" {
                    let payload = match serde_json::from_str::<String>(payload.get()) {
                        Ok(text) => text,
                        Err(_) => payload.get().to_owned(),
                    };
                    return Incoming::Frame(format!("channel {channel} {payload}"));
                }
            }
            return Incoming::Nothing;
        }
        if packet.starts_with("41") || packet.starts_with("44") {
            return Incoming::Close;
        }
        let Some(ack) = packet.strip_prefix('3') else {
            return Incoming::Nothing;
        };
        let digits = ack.bytes().take_while(u8::is_ascii_digit).count();
        let (Ok(id), Ok(args)) = (
            ack[..digits].parse::<u64>(),
            serde_json::from_str::<Vec<Value>>(&ack[digits..]),
        ) else {
            return Incoming::Nothing;
        };
        let answer = args.into_iter().next().unwrap_or(Value::Null);
        match self.waiting.remove(&id) {
            Some(Waiting::Subscribe(channel)) if answer.get("error").is_none() => {
                Incoming::Frame(format!("subscribed {channel}"))
            }
            Some(Waiting::Unsubscribe(channel)) => {
                Incoming::Frame(format!("unsubscribed {channel}"))
            }
            Some(Waiting::Action(uid)) => {
                let mut answer = match answer {
                    Value::Object(map) => map,
                    other => serde_json::Map::from_iter([("result".to_owned(), other)]),
                };
                answer.insert("requestUid".to_owned(), uid);
                Incoming::Frame(format!("action {}", Value::Object(answer)))
            }
            Some(Waiting::Subscribe(_)) => Incoming::Frame(format!("error {answer}")),
            None => Incoming::Nothing,
        }
    }
}
