//! The wire protocol: jii comet's text frames, parsed and formatted in this one module.
//!
//! Every frame is `<keyword> <rest>`. jii's own client speaks the first four rows and
//! ignores any frame it does not know, so the extensions below stay compatible with it.
//!
//! | direction | frame |
//! | --- | --- |
//! | client → server | `subscribe <channel>` |
//! | client → server | `unsubscribe <channel>` |
//! | client → server | `channel <channel> <payload>` |
//! | client → server | `action <route> <json object with "requestUid">` |
//! | server → client | `channel <channel> <payload>` |
//! | server → client | `action <json>`: the handler's answer, with `requestUid` |
//! | server → client | `action {"requestUid":…,"error":{"code":…,"message":…}}` (extension) |
//! | server → client | `error {"code":…,"message":…}`: a frame we could not take (extension) |
//! | server → client | `subscribed <channel>` / `unsubscribed <channel>` (extension) |
//! | client → server | `hello <json object>`: options, e.g. `{"heartbeat":true}` (extension) |
//! | server → client | `hello {"heartbeat":…,"max_frame_bytes":…,"max_pending_actions":…}` (extension) |
//! | server → client | `ping`: every heartbeat interval, to a connection that asked (extension) |
//!
//! Parsing borrows from the frame and allocates nothing on the `channel` hot path; errors
//! are plain values ([`FrameError`]) that know how to answer themselves
//! ([`FrameError::to_frame`]). Nothing here panics on any input.

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codes::ErrorCode;

/// The default largest frame a client may send, in bytes (64 KiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// The default longest channel name or action route, in bytes.
pub const DEFAULT_MAX_NAME_BYTES: usize = 256;
/// How many bytes at the start of a frame over `max_frame_bytes` are read to find what
/// the `too_large` answer names (the route and `requestUid`, or the channel).
const TOO_LARGE_PROBE_BYTES: usize = 1024;
/// The frame a server sends every heartbeat interval to a connection that asked for it
/// (`hello {"heartbeat":true}`).
pub const PING_FRAME: &str = "ping";
/// The default deepest nesting of an action's JSON (the object itself is level 1). Far
/// below serde_json's limit of 128, which every process must stay under when it reads
/// the call back (inside the queued call) or its echo (inside an answer).
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;

/// The limits the parser enforces; see the fields of the same names in [`crate::Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Longest channel name or route, in bytes.
    pub max_name_bytes: usize,
    /// Deepest nesting of an action's JSON object.
    pub max_json_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_name_bytes: DEFAULT_MAX_NAME_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
        }
    }
}

/// The id a client gives an action call so it can match the answer: a string or a number,
/// echoed back exactly as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestUid(Value);

impl RequestUid {
    /// Takes a JSON value as a request id; only non-empty strings and numbers qualify.
    pub fn from_value(value: Value) -> Option<RequestUid> {
        match &value {
            Value::String(s) if !s.is_empty() => Some(RequestUid(value)),
            Value::Number(_) => Some(RequestUid(value)),
            _ => None,
        }
    }

    /// The id as JSON, for building answers.
    pub fn as_value(&self) -> &Value {
        &self.0
    }
}

impl From<&str> for RequestUid {
    fn from(value: &str) -> Self {
        RequestUid(Value::String(value.to_owned()))
    }
}

impl fmt::Display for RequestUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Value::String(s) => f.write_str(s),
            other => write!(f, "{other}"),
        }
    }
}

/// A frame from a client, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame<'a> {
    /// `subscribe <channel>`
    Subscribe(&'a str),
    /// `unsubscribe <channel>`
    Unsubscribe(&'a str),
    /// `channel <channel> <payload>`: publish `payload` (any text) to `channel`.
    Publish {
        /// Channel name.
        channel: &'a str,
        /// The payload, passed on unchanged.
        payload: &'a str,
    },
    /// `action <route> <json>`: call a server action.
    Action(ActionRequest),
    /// `hello <json object>`: the client's options (an extension); answered with
    /// [`hello_frame`].
    Hello(Hello),
}

/// The options a client gives in `hello <json object>`. Keys this server does not know are
/// ignored; a key left out takes its default, so each `hello` sets every option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hello {
    /// `"heartbeat": true`: send this connection [`PING_FRAME`] every heartbeat interval,
    /// so that a client which cannot see WebSocket pings (a browser) notices a dead
    /// connection. Anything but `true` means no.
    pub heartbeat: bool,
}

/// What a server tells a client in answer to its `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloAnswer {
    /// The heartbeat interval in ms: how often `ping` comes when the client asked.
    pub heartbeat: u64,
    /// The largest frame the server takes, in bytes; larger ones are answered `too_large`.
    pub max_frame_bytes: usize,
    /// How many action calls a connection may have waiting for an answer.
    pub max_pending_actions: usize,
}

/// The parts of an `action` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    /// Route such as `site/test`.
    pub route: String,
    /// The client's id for this call.
    pub request_uid: RequestUid,
    /// The JSON object sent, without `requestUid`.
    pub params: Map<String, Value>,
}

/// Why a client frame was refused, and enough context to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// The error code sent to the client.
    pub code: ErrorCode,
    /// A sentence for humans.
    pub message: Cow<'static, str>,
    /// Set when the frame was an action whose `requestUid` could be read: the answer is
    /// then an `action` error response the client's pending request resolves with.
    pub request_uid: Option<RequestUid>,
    /// The channel the frame was about, if any.
    pub channel: Option<String>,
    /// The action route the frame was about, when its `requestUid` could not be read (a
    /// frame too large to parse); the `error` frame then names it.
    pub route: Option<Box<str>>,
}

impl FrameError {
    /// An error about the frame as a whole.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> FrameError {
        FrameError {
            code,
            message: message.into(),
            request_uid: None,
            channel: None,
            route: None,
        }
    }

    fn about_channel(mut self, channel: &str) -> FrameError {
        self.channel = Some(channel.to_owned());
        self
    }

    fn about_request(mut self, request_uid: RequestUid) -> FrameError {
        self.request_uid = Some(request_uid);
        self
    }

    /// The frame that answers this error: an `action` error response when the request id
    /// is known, else an `error` frame.
    pub fn to_frame(&self) -> ByteString {
        match &self.request_uid {
            Some(uid) => action_error_frame(uid, &self.code, &self.message),
            None => {
                let mut body = error_body(&self.code, &self.message, self.channel.as_deref());
                if let Some(route) = &self.route {
                    body.insert("route".into(), Value::String(route.to_string()));
                }
                ByteString::from(format!("error {}", Value::Object(body)))
            }
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for FrameError {}

/// Checks a channel name or route: non-empty, at most `max` bytes, no whitespace and no
/// control characters (a space would split the frame; controls confuse logs).
pub fn check_name(name: &str, max: usize) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > max {
        return Err("is too long");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("holds a space or a control character");
    }
    Ok(())
}

fn channel_error(channel: &str, limits: &ParseLimits) -> Option<FrameError> {
    check_name(channel, limits.max_name_bytes).err().map(|why| {
        FrameError::new(ErrorCode::BadChannel, format!("channel name {why}")).about_channel(channel)
    })
}

/// Parses one frame from a client.
///
/// ```
/// use comet_actors::protocol::{parse_client_frame, ClientFrame, ParseLimits};
///
/// let frame = parse_client_frame("channel chat {\"text\":\"hi\"}", &ParseLimits::default());
/// assert_eq!(
///     frame,
///     Ok(ClientFrame::Publish { channel: "chat", payload: "{\"text\":\"hi\"}" })
/// );
/// ```
pub fn parse_client_frame<'a>(
    text: &'a str,
    limits: &ParseLimits,
) -> Result<ClientFrame<'a>, FrameError> {
    if text.len() > limits.max_frame_bytes {
        return Err(too_large(text, limits));
    }
    if text.is_empty() {
        return Err(FrameError::new(ErrorCode::BadFrame, "empty frame"));
    }
    let (keyword, rest) = match text.split_once(' ') {
        Some((keyword, rest)) => (keyword, Some(rest)),
        None => (text, None),
    };
    match keyword {
        "subscribe" | "unsubscribe" => {
            let Some(channel) = rest.filter(|r| !r.is_empty()) else {
                return Err(FrameError::new(
                    ErrorCode::BadFrame,
                    format!("`{keyword}` needs a channel name"),
                ));
            };
            if let Some(err) = channel_error(channel, limits) {
                return Err(err);
            }
            Ok(if keyword == "subscribe" {
                ClientFrame::Subscribe(channel)
            } else {
                ClientFrame::Unsubscribe(channel)
            })
        }
        "channel" => {
            let Some(rest) = rest.filter(|r| !r.is_empty()) else {
                return Err(FrameError::new(
                    ErrorCode::BadFrame,
                    "`channel` needs a channel name and a payload",
                ));
            };
            let Some((channel, payload)) = rest.split_once(' ') else {
                return Err(FrameError::new(
                    ErrorCode::BadFrame,
                    "`channel` needs a payload after the channel name",
                )
                .about_channel(rest));
            };
            if let Some(err) = channel_error(channel, limits) {
                return Err(err);
            }
            Ok(ClientFrame::Publish { channel, payload })
        }
        "action" => parse_action(rest.unwrap_or(""), limits).map(ClientFrame::Action),
        "hello" => parse_hello(rest.unwrap_or("")).map(ClientFrame::Hello),
        _ => {
            let shown: String = keyword.chars().take(32).collect();
            Err(FrameError::new(
                ErrorCode::BadFrame,
                format!("unknown frame keyword `{}`", shown.escape_debug()),
            ))
        }
    }
}

/// The `too_large` answer to a frame over the limit, naming what the frame's first
/// [`TOO_LARGE_PROBE_BYTES`] bytes say it is about, so that the client can tell which of
/// its calls or publishes failed: the route, and the `requestUid` when it is the first key
/// of the action's JSON (as the comet JS client sends it), or the channel of a publish.
/// Only that prefix is read: a frame over the limit is never parsed as a whole.
fn too_large(text: &str, limits: &ParseLimits) -> FrameError {
    let mut end = TOO_LARGE_PROBE_BYTES.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let probe = &text[..end];
    let (keyword, rest) = probe.split_once(' ').unwrap_or((probe, ""));
    let (name, body) = rest.split_once(' ').unwrap_or(("", ""));
    let named = check_name(name, limits.max_name_bytes).is_ok();
    let what = match keyword {
        "action" if named => format!("action `{name}`: "),
        "channel" if named => format!("publish to `{name}`: "),
        _ => String::new(),
    };
    let mut err = FrameError::new(
        ErrorCode::TooLarge,
        format!(
            "{what}frame of {} bytes exceeds the limit of {} bytes",
            text.len(),
            limits.max_frame_bytes
        ),
    );
    match keyword {
        "action" if named => match leading_request_uid(body) {
            Some(uid) => err = err.about_request(uid),
            None => err.route = Some(name.into()),
        },
        "channel" if named => err = err.about_channel(name),
        _ => {}
    }
    err
}

/// The `requestUid` of an action's JSON when it is the object's first key:
/// `{"requestUid":"ab-1",…` (whitespace allowed). Reads only as far as the value.
fn leading_request_uid(json: &str) -> Option<RequestUid> {
    let rest = json.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix("\"requestUid\"")?.trim_start();
    let rest = rest.strip_prefix(':')?;
    let mut deserializer = serde_json::Deserializer::from_str(rest);
    // One value, whatever follows it: the rest of the object is never read.
    let value = Value::deserialize(&mut deserializer).ok()?;
    RequestUid::from_value(value)
}

/// Reads the options of `hello <json object>`.
fn parse_hello(rest: &str) -> Result<Hello, FrameError> {
    if rest.trim().is_empty() {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            "`hello` needs a JSON object, e.g. {\"heartbeat\":true}",
        ));
    }
    match serde_json::from_str::<Value>(rest) {
        Ok(Value::Object(map)) => Ok(Hello {
            heartbeat: map.get("heartbeat") == Some(&Value::Bool(true)),
        }),
        Ok(_) => Err(FrameError::new(
            ErrorCode::BadJson,
            "the hello's JSON must be an object",
        )),
        Err(err) => Err(FrameError::new(
            ErrorCode::BadJson,
            format!("the hello's JSON does not parse: {err}"),
        )),
    }
}

fn parse_action(rest: &str, limits: &ParseLimits) -> Result<ActionRequest, FrameError> {
    let (route, json) = match rest.split_once(' ') {
        Some((route, json)) => (route, json),
        None => (rest, ""),
    };
    if route.is_empty() {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            "`action` needs a route and a JSON object",
        ));
    }
    if json.trim().is_empty() {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            "`action` needs a JSON object with a requestUid after the route",
        ));
    }
    let params = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(FrameError::new(
                ErrorCode::BadJson,
                "the action's JSON must be an object",
            ))
        }
        Err(err) => {
            return Err(FrameError::new(
                ErrorCode::BadJson,
                format!("the action's JSON does not parse: {err}"),
            ))
        }
    };
    let mut params = params;
    let request_uid = match params.remove("requestUid").map(RequestUid::from_value) {
        Some(Some(uid)) => uid,
        Some(None) => {
            return Err(FrameError::new(
                ErrorCode::BadFrame,
                "requestUid must be a non-empty string or a number",
            ))
        }
        None => {
            return Err(FrameError::new(
                ErrorCode::BadFrame,
                "the action's JSON has no requestUid, so it could never be answered",
            ))
        }
    };
    let depth = json_depth(&params);
    if depth > limits.max_json_depth {
        return Err(FrameError::new(
            ErrorCode::BadJson,
            format!(
                "the action's JSON nests {depth} levels deep; at most {} are accepted",
                limits.max_json_depth
            ),
        )
        .about_request(request_uid));
    }
    if let Err(why) = check_name(route, limits.max_name_bytes) {
        return Err(
            FrameError::new(ErrorCode::BadRoute, format!("route {why}")).about_request(request_uid)
        );
    }
    Ok(ActionRequest {
        route: route.to_owned(),
        request_uid,
        params,
    })
}

/// How deep `object` nests: 1 for an object of plain values, one more for each array or
/// object inside (without recursion, whatever the input).
fn json_depth(object: &Map<String, Value>) -> usize {
    let mut deepest = 1;
    let mut stack: Vec<(&Value, usize)> = object.values().map(|value| (value, 2)).collect();
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Array(items) => {
                deepest = deepest.max(depth);
                stack.extend(items.iter().map(|item| (item, depth + 1)));
            }
            Value::Object(fields) => {
                deepest = deepest.max(depth);
                stack.extend(fields.values().map(|field| (field, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Formats a client's `subscribe` frame.
pub fn subscribe_frame(channel: &str) -> String {
    format!("subscribe {channel}")
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

fn error_body(code: &ErrorCode, message: &str, channel: Option<&str>) -> Map<String, Value> {
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
    /// `subscribed <channel>`
    Subscribed(&'a str),
    /// `unsubscribed <channel>`
    Unsubscribed(&'a str),
    /// `hello <json>`: the answer to the client's `hello`.
    Hello(HelloAnswer),
    /// `ping`: a heartbeat the client asked for.
    Ping,
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
        "subscribed" => Ok(ServerFrame::Subscribed(rest)),
        "unsubscribed" => Ok(ServerFrame::Unsubscribed(rest)),
        "hello" => serde_json::from_str(rest)
            .map(ServerFrame::Hello)
            .map_err(|err| FrameError::new(ErrorCode::BadJson, format!("bad hello answer: {err}"))),
        _ => Err(FrameError::new(ErrorCode::BadFrame, "unknown keyword")),
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    fn action(arrays: usize) -> String {
        format!(
            "action site/test {{\"requestUid\":\"r1\",\"deep\":{}1{}}}",
            "[".repeat(arrays),
            "]".repeat(arrays)
        )
    }

    #[test]
    fn an_action_nested_deeper_than_the_limit_is_refused_with_its_request_uid() {
        let limits = ParseLimits {
            max_json_depth: 4,
            ..ParseLimits::default()
        };
        assert!(matches!(
            parse_client_frame(&action(3), &limits),
            Ok(ClientFrame::Action(_))
        ));
        let err = parse_client_frame(&action(4), &limits).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadJson);
        assert_eq!(err.request_uid, Some(RequestUid::from("r1")));
        assert!(err.message.contains("5 levels"), "{}", err.message);
    }
}
