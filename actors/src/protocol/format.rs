//! The frames the server writes (channel messages, answers, errors, acknowledgements,
//! `hello`), and, for Rust clients, tests and the load generator, the frames a client
//! writes and a parser of the server's.

use bytestring::ByteString;
use serde_json::{Map, Value};

use super::{FrameError, Hello, HelloAnswer, RequestUid, PING_FRAME};
use crate::codes::ErrorCode;

/// Formats a client's `subscribe` frame.
pub fn subscribe_frame(channel: &str) -> String {
    format!("subscribe {channel}")
}

/// Formats a client's `subscribe <channel> <options>` frame (`options` a JSON object).
pub fn subscribe_with_frame(channel: &str, options: &Value) -> String {
    format!("subscribe {channel} {options}")
}

/// Formats a client's `auth <token>` frame.
pub fn auth_frame(token: &str) -> String {
    format!("auth {token}")
}

/// Formats `authenticated {"user":…,"exp":…,"connection":…}`: the answer to an `auth`
/// that succeeded (`user` null when anonymous, `exp` null when it never expires).
pub fn authenticated_frame(user: Option<&str>, exp: Option<u64>, connection: &str) -> ByteString {
    let body = serde_json::json!({ "user": user, "exp": exp, "connection": connection });
    ByteString::from(format!("authenticated {body}"))
}

/// Formats `refresh {"exp":…,"in":…}`: the token expires at `exp` (unix seconds), in `in`
/// milliseconds; the client should send `auth <new token>` before.
pub fn refresh_frame(exp: u64, in_ms: u64) -> ByteString {
    let body = serde_json::json!({ "exp": exp, "in": in_ms });
    ByteString::from(format!("refresh {body}"))
}

/// Formats a client's `unsubscribe` frame.
pub fn unsubscribe_frame(channel: &str) -> String {
    format!("unsubscribe {channel}")
}

/// Formats an `action` call frame (client → server); `params` must be a JSON object.
pub fn action_call_frame(route: &str, request_uid: &RequestUid, params: &Value) -> String {
    let mut object = match params {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    object.insert("requestUid".into(), request_uid.as_value().clone());
    format!("action {route} {}", Value::Object(object))
}

/// Formats `channel <channel> <payload>`, the same both ways.
pub fn channel_frame(channel: &str, payload: &str) -> ByteString {
    let mut frame = String::with_capacity(9 + channel.len() + payload.len());
    frame.push_str("channel ");
    frame.push_str(channel);
    frame.push(' ');
    frame.push_str(payload);
    ByteString::from(frame)
}

/// Formats `pub <channel> <offset> <payload>`: a publication with its position, for a
/// subscription that asked for positions.
pub fn pub_frame(channel: &str, offset: u64, payload: &str) -> ByteString {
    ByteString::from(format!("pub {channel} {offset} {payload}"))
}

/// Formats `gap <channel> {"offset":…,"epoch":…}`: publications were lost; the
/// position jumped there.
pub fn gap_frame(channel: &str, offset: u64, epoch: &str) -> ByteString {
    let body = serde_json::json!({ "offset": offset, "epoch": epoch });
    ByteString::from(format!("gap {channel} {body}"))
}

/// Formats `join <channel> [<entry>,…]` or `leave <channel> [<entry>,…]` (`kind`) from
/// the entries' JSON: connections that joined or left a channel with presence.
pub fn presence_event_frame<'a>(
    kind: &str,
    channel: &str,
    entries: impl Iterator<Item = &'a str>,
) -> ByteString {
    let mut frame = format!("{kind} {channel} [");
    for (n, entry) in entries.enumerate() {
        if n > 0 {
            frame.push(',');
        }
        frame.push_str(entry);
    }
    frame.push(']');
    ByteString::from(frame)
}

/// Formats `subscribed <channel> {"offset":…,"epoch":…[,"recovered":…]}`: a subscription
/// with positions is in effect (after the missed publications, when it recovered).
pub fn subscribed_at_frame(
    channel: &str,
    offset: u64,
    epoch: &str,
    recovered: Option<bool>,
) -> ByteString {
    let mut body = serde_json::json!({ "offset": offset, "epoch": epoch });
    if let Some(recovered) = recovered {
        body["recovered"] = Value::Bool(recovered);
    }
    ByteString::from(format!("subscribed {channel} {body}"))
}

/// Formats `subscribed <channel>`: the subscription is in effect.
pub fn subscribed_frame(channel: &str) -> ByteString {
    ByteString::from(format!("subscribed {channel}"))
}

/// Formats `unsubscribed <channel>`: the connection no longer receives the channel.
pub fn unsubscribed_frame(channel: &str) -> ByteString {
    ByteString::from(format!("unsubscribed {channel}"))
}

/// Formats the answer to an action call. An object result gets `requestUid` added (as jii
/// does); any other value is wrapped as `{"result": value}` so that it can carry the id.
pub fn action_response_frame(request_uid: &RequestUid, result: Value) -> ByteString {
    let mut object = match result {
        Value::Object(map) => map,
        other => {
            let mut map = Map::new();
            map.insert("result".into(), other);
            map
        }
    };
    object.insert("requestUid".into(), request_uid.as_value().clone());
    ByteString::from(format!("action {}", Value::Object(object)))
}

/// Formats a failed action call: `action {"requestUid":…,"error":{"code":…,"message":…}}`.
pub fn action_error_frame(request_uid: &RequestUid, code: &ErrorCode, message: &str) -> ByteString {
    let body = serde_json::json!({
        "requestUid": request_uid.as_value(),
        "error": { "code": code.as_str(), "message": message },
    });
    ByteString::from(format!("action {body}"))
}

/// Formats `error {"code":…,"message":…}` for a frame that had no request to answer.
pub fn error_frame(code: &ErrorCode, message: &str, channel: Option<&str>) -> ByteString {
    let body = error_body(code, message, channel);
    ByteString::from(format!("error {}", Value::Object(body)))
}

pub(super) fn error_body(
    code: &ErrorCode,
    message: &str,
    channel: Option<&str>,
) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("code".into(), Value::String(code.as_str().to_owned()));
    body.insert("message".into(), Value::String(message.to_owned()));
    if let Some(channel) = channel {
        body.insert("channel".into(), Value::String(channel.to_owned()));
    }
    body
}

/// Formats a client's `hello` frame: `hello {"heartbeat":true}` asks for [`PING_FRAME`]s.
pub fn client_hello_frame(hello: &Hello) -> String {
    format!(
        "hello {}",
        serde_json::json!({ "heartbeat": hello.heartbeat })
    )
}

/// Formats the server's answer to a `hello`:
/// `hello {"heartbeat":25000,"max_frame_bytes":65536,"max_pending_actions":64}`.
pub fn hello_frame(answer: &HelloAnswer) -> ByteString {
    let body = serde_json::json!({
        "heartbeat": answer.heartbeat,
        "max_frame_bytes": answer.max_frame_bytes,
        "max_pending_actions": answer.max_pending_actions,
    });
    ByteString::from(format!("hello {body}"))
}

/// Formats the notice that `dropped` frames queued for a slow client were dropped
/// (`error {"code":"messages_dropped","message":…,"dropped":N}`); see
/// [`SlowConsumerPolicy::DropOldest`](crate::SlowConsumerPolicy::DropOldest).
pub fn messages_dropped_frame(dropped: u64) -> ByteString {
    let body = serde_json::json!({
        "code": ErrorCode::MessagesDropped.as_str(),
        "message": format!("{dropped} messages were dropped: the connection read too slowly"),
        "dropped": dropped,
    });
    ByteString::from(format!("error {body}"))
}

/// A frame from the server, parsed; for Rust clients, tests and the load generator.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame<'a> {
    /// `channel <channel> <payload>`
    Channel {
        /// Channel name.
        channel: &'a str,
        /// Payload as published.
        payload: &'a str,
    },
    /// `action <json>`: an answer (or an error answer) to an action call.
    Action(Map<String, Value>),
    /// `error <json>`
    Error(Map<String, Value>),
    /// `subscribed <channel>` (the channel alone, also when a position object follows:
    /// see [`ServerFrame::SubscribedAt`]).
    Subscribed(&'a str),
    /// `subscribed <channel> {"offset":…,"epoch":…[,"recovered":…]}`
    SubscribedAt(&'a str, Map<String, Value>),
    /// `pub <channel> <offset> <payload>`
    Pub {
        /// Channel name.
        channel: &'a str,
        /// The publication's offset.
        offset: u64,
        /// Payload as published.
        payload: &'a str,
    },
    /// `gap <channel> {"offset":…,"epoch":…}`
    Gap(&'a str, Map<String, Value>),
    /// `unsubscribed <channel>`
    Unsubscribed(&'a str),
    /// `hello <json>`: the answer to the client's `hello`.
    Hello(HelloAnswer),
    /// `ping`: a heartbeat the client asked for.
    Ping,
    /// `authenticated <json>`: an `auth` succeeded.
    Authenticated(Map<String, Value>),
    /// `refresh <json>`: the token expires soon.
    Refresh(Map<String, Value>),
}

/// Parses one frame from the server.
///
/// ```
/// use comet_actors::protocol::{parse_server_frame, ServerFrame};
///
/// assert_eq!(
///     parse_server_frame("channel chat hello world"),
///     Ok(ServerFrame::Channel { channel: "chat", payload: "hello world" })
/// );
/// ```
pub fn parse_server_frame(text: &str) -> Result<ServerFrame<'_>, FrameError> {
    if text == PING_FRAME {
        return Ok(ServerFrame::Ping);
    }
    let (keyword, rest) = text
        .split_once(' ')
        .ok_or_else(|| FrameError::new(ErrorCode::BadFrame, "frame has no space"))?;
    let object = |rest: &str| match serde_json::from_str::<Value>(rest) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(FrameError::new(
            ErrorCode::BadJson,
            "expected a JSON object",
        )),
    };
    match keyword {
        "channel" => {
            let (channel, payload) = rest.split_once(' ').ok_or_else(|| {
                FrameError::new(ErrorCode::BadFrame, "channel frame has no payload")
            })?;
            Ok(ServerFrame::Channel { channel, payload })
        }
        "action" => object(rest).map(ServerFrame::Action),
        "error" => object(rest).map(ServerFrame::Error),
        "subscribed" => match rest.split_once(' ') {
            Some((channel, json)) => object(json).map(|at| ServerFrame::SubscribedAt(channel, at)),
            None => Ok(ServerFrame::Subscribed(rest)),
        },
        "pub" => {
            let mut parts = rest.splitn(3, ' ');
            let (Some(channel), Some(offset), Some(payload)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(FrameError::new(
                    ErrorCode::BadFrame,
                    "pub frame is incomplete",
                ));
            };
            let offset = offset
                .parse()
                .map_err(|_| FrameError::new(ErrorCode::BadFrame, "pub frame's offset"))?;
            Ok(ServerFrame::Pub {
                channel,
                offset,
                payload,
            })
        }
        "gap" => {
            let (channel, json) = rest
                .split_once(' ')
                .ok_or_else(|| FrameError::new(ErrorCode::BadFrame, "gap frame is incomplete"))?;
            object(json).map(|at| ServerFrame::Gap(channel, at))
        }
        "authenticated" => object(rest).map(ServerFrame::Authenticated),
        "refresh" => object(rest).map(ServerFrame::Refresh),
        "unsubscribed" => Ok(ServerFrame::Unsubscribed(rest)),
        "hello" => serde_json::from_str(rest)
            .map(ServerFrame::Hello)
            .map_err(|err| FrameError::new(ErrorCode::BadJson, format!("bad hello answer: {err}"))),
        _ => Err(FrameError::new(ErrorCode::BadFrame, "unknown keyword")),
    }
}
