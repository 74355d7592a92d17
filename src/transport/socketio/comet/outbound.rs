//! What a comet connection writes (jii frames), in Socket.IO's words, when the transport
//! drains the outlet:
//!
//! | frame | the client gets |
//! | --- | --- |
//! | `channel <channel> <payload>` | event `channel` with `(channel, payload)`: the payload parsed when it is JSON text, else the string |
//! | `action <answer>` | the ack of the `action`, `history`, `presence` or `presence_stats` emit, with the answer object without `requestUid` |
//! | `join <channel> [<entry>,…]` / `leave <channel> [<entry>,…]` (a subscription with `joinLeave`) | event `join` / `leave` with `(channel, entries)` |
//! | `subscribed <channel>` / `unsubscribed <channel>` | the acks waiting for it, `{"channel":…}`; none waiting: event `comet:subscribed` / `comet:unsubscribed` |
//! | `subscribed <channel> {"offset":…,"epoch":…[,"recovered":…]}` (a subscribe with `recover`) | the ack, `{"channel":…,"offset":…,"epoch":…[,"recovered":…]}` |
//! | `pub <channel> <offset> <payload>` (a subscription with `recover`) | event `channel` with `(channel, payload, offset)` |
//! | `error {…,"channel":C}` with a subscribe of C waiting | that ack, `{"error":{…}}` |
//! | `error {…}` while the CONNECT waits for `authenticated` | CONNECT_ERROR `{"message":…,"data":{"code":…}}` |
//! | `error {…}` otherwise | event `comet:error` with the object |
//! | `authenticated {…}` | the CONNECT answer (while it waits), an `auth` emit's ack, or event `comet:authenticated` |
//! | any other `<keyword> <rest>` | event `comet:<keyword>` with the rest (parsed when JSON) |
//!
//! On close the client gets event `comet:close` `{"code":…,"reason":…}`, then: before
//! the CONNECT was answered and for 4100–4199, CONNECT_ERROR `{"message":<reason>,
//! "data":{"code":<code>}}`; after it, for 1000 and 4100–4199 (do not reconnect), a
//! DISCONNECT (`socket.io-client` then stays disconnected); for any other code nothing
//! more, so that the client reconnects, as over every comet transport.

use std::cell::RefCell;

use bytestring::ByteString;
use comet_actors::CloseCode;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{CometApp, Phase, RAW};
use crate::transport::socketio::cache::Cache;
use crate::transport::socketio::eio::EioMessage;
use crate::transport::socketio::packet::{connect_error, Kind, Packet};

/// `text` as a JSON value in an event: itself when it is JSON, else a string.
fn json_or_string(text: &str, out: &mut String) {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => out.push_str(raw.get()),
        Err(_) => out.push_str(&Value::from(text).to_string()),
    }
}

/// `2["<name>",<arg>]` (or without the argument).
fn event(name: &str, arg: Option<&str>) -> EioMessage {
    let mut text = String::with_capacity(16 + name.len() + arg.map_or(0, str::len));
    text.push_str("2[");
    text.push_str(&Value::from(name).to_string());
    if let Some(arg) = arg {
        text.push(',');
        json_or_string(arg, &mut text);
    }
    text.push(']');
    EioMessage::Text(ByteString::from(text))
}

fn ack(id: u64, value: &Value) -> EioMessage {
    EioMessage::Text(ByteString::from(format!("3{id}[{value}]")))
}

thread_local! {
    /// The events of recent `channel` frames on this thread (see `cache.rs`).
    static EVENTS: RefCell<Cache> = RefCell::new(Cache::default());
}

/// `2["channel",<channel>,<payload>]` for the rest of a `channel` frame.
fn channel_event(rest: &str, len: usize) -> ByteString {
    let (channel, payload) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut text = String::with_capacity(len + 24);
    text.push_str("2[\"channel\",");
    text.push_str(&Value::from(channel).to_string());
    text.push(',');
    json_or_string(payload, &mut text);
    text.push(']');
    ByteString::from(text)
}

/// Translates one outlet frame.
pub(super) fn translate(app: &mut CometApp, frame: ByteString, out: &mut dyn FnMut(EioMessage)) {
    if let Some(raw) = frame.strip_prefix(RAW) {
        out(EioMessage::Text(frame.slice_ref(raw)));
        return;
    }
    let (keyword, rest) = frame.split_once(' ').unwrap_or((&frame, ""));
    match keyword {
        "channel" => {
            let event = EVENTS
                .with(|events| Cache::get(events, &frame, || channel_event(rest, frame.len())));
            out(EioMessage::Text(event));
        }
        "action" => {
            let Ok(Value::Object(mut answer)) = serde_json::from_str::<Value>(rest) else {
                out(event("action", Some(rest)));
                return;
            };
            let uid = match answer.get("requestUid") {
                Some(Value::String(uid)) => uid.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            match app.actions.remove(&uid) {
                Some(Some(id)) => {
                    answer.remove("requestUid");
                    out(ack(id, &Value::Object(answer)));
                }
                Some(None) => {}
                None => out(event("action", Some(rest))),
            }
        }
        "pub" => {
            // `pub <channel> <offset> <payload>`: a channel event with its offset.
            let mut parts = rest.splitn(3, ' ');
            let (Some(channel), Some(offset), payload) = (parts.next(), parts.next(), parts.next())
            else {
                out(event("comet:pub", Some(&Value::from(rest).to_string())));
                return;
            };
            let mut text = String::with_capacity(frame.len() + 24);
            text.push_str("2[\"channel\",");
            text.push_str(&Value::from(channel).to_string());
            text.push(',');
            json_or_string(payload.unwrap_or(""), &mut text);
            text.push(',');
            text.push_str(
                &offset
                    .parse::<u64>()
                    .map_or(Value::Null, Value::from)
                    .to_string(),
            );
            text.push(']');
            out(EioMessage::Text(ByteString::from(text)));
        }
        "join" | "leave" => {
            // `join <channel> [<entry>,…]`: event `join` with `(channel, entries)`.
            let Some((channel, entries)) = rest.split_once(' ') else {
                out(event(
                    &format!("comet:{keyword}"),
                    Some(&Value::from(rest).to_string()),
                ));
                return;
            };
            let mut text = String::with_capacity(frame.len() + 16);
            text.push_str("2[");
            text.push_str(&Value::from(keyword).to_string());
            text.push(',');
            text.push_str(&Value::from(channel).to_string());
            text.push(',');
            json_or_string(entries, &mut text);
            text.push(']');
            out(EioMessage::Text(ByteString::from(text)));
        }
        "subscribed" | "unsubscribed" => {
            let waiting = if keyword == "subscribed" {
                &mut app.subscribes
            } else {
                &mut app.unsubscribes
            };
            // A subscribe with `recover` is answered with its position after the channel.
            let (rest, position) = match rest.split_once(' ') {
                Some((channel, json)) => (channel, serde_json::from_str::<Value>(json).ok()),
                None => (rest, None),
            };
            match waiting.remove(rest) {
                Some(ids) => {
                    let mut answer = json!({ "channel": rest });
                    if let (Some(Value::Object(position)), Value::Object(answer)) =
                        (position, &mut answer)
                    {
                        answer.extend(position);
                    }
                    for id in ids {
                        out(ack(id, &answer));
                    }
                }
                None => out(event(
                    &format!("comet:{keyword}"),
                    Some(&Value::from(rest).to_string()),
                )),
            }
        }
        "error" => {
            let error: Value = serde_json::from_str(rest)
                .unwrap_or_else(|_| json!({ "code": "internal", "message": rest }));
            let channel = error
                .get("channel")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let waiting = channel.and_then(|channel| {
                let ids = app.subscribes.get_mut(&channel)?;
                let id = ids.pop_front();
                if ids.is_empty() {
                    app.subscribes.remove(&channel);
                }
                id
            });
            if let Some(id) = waiting {
                out(ack(id, &json!({ "error": error })));
            } else if app.phase == Phase::AwaitAuth {
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("refused");
                let code = error.get("code").cloned().unwrap_or(Value::Null);
                out(text_packet(&connect_error(
                    "/",
                    message,
                    Some(json!({ "code": code })),
                )));
            } else {
                out(event("comet:error", Some(rest)));
            }
        }
        "authenticated" => {
            if app.phase == Phase::AwaitAuth {
                let answer = app.connect_ok();
                out(text_packet(&answer));
            } else if let Some(id) = app.auths.pop_front() {
                let value = serde_json::from_str(rest).unwrap_or(Value::Null);
                out(ack(id, &value));
            } else {
                out(event("comet:authenticated", Some(rest)));
            }
        }
        other => {
            let arg = (!rest.is_empty()).then_some(rest);
            out(event(&format!("comet:{other}"), arg));
        }
    }
}

fn text_packet(packet: &Packet) -> EioMessage {
    EioMessage::Text(ByteString::from(packet.encode()))
}

/// What the client gets before the close; see the module docs.
pub(super) fn closing(app: &mut CometApp, code: CloseCode, out: &mut dyn FnMut(EioMessage)) {
    let number = code.code();
    let refused = (4100..=4199).contains(&number);
    if app.phase == Phase::AwaitConnect && !refused {
        return;
    }
    let close = json!({ "code": number, "reason": code.reason() }).to_string();
    out(event("comet:close", Some(&close)));
    if app.phase != Phase::Connected {
        if refused {
            let data = json!({ "code": number });
            out(text_packet(&connect_error("/", code.reason(), Some(data))));
        }
    } else if refused || number == 1000 {
        out(text_packet(&Packet::new(Kind::Disconnect, None)));
    }
}
