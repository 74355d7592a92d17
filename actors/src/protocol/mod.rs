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
//! | client → server | `auth <token>`: identity, first or in band (extension) |
//! | client → server | `subscribe <channel> <json object>`: with options, e.g. `{"token":…}` (extension) |
//! | server → client | `authenticated {"user":…,"exp":…,"connection":…}`: an `auth` succeeded (extension) |
//! | server → client | `refresh {"exp":…,"in":…}`: send a new token before `exp` (extension) |
//! | client → server | `history <channel> {"requestUid":…,"since":…,"limit":…}`: read history (extension) |
//! | server → client | `pub <channel> <offset> <payload>`: a publication with its position (extension) |
//! | server → client | `subscribed <channel> {"offset":…,"epoch":…,"recovered":…}`: with positions (extension) |
//! | server → client | `gap <channel> {"offset":…,"epoch":…}`: publications were lost (extension) |
//!
//! Parsing borrows from the frame and allocates nothing on the `channel` hot path; errors
//! are plain values ([`FrameError`]) that know how to answer themselves
//! ([`FrameError::to_frame`]). Nothing here panics on any input. This file parses what
//! clients send; `format.rs` writes what the server sends (and, for Rust clients, tests
//! and the load generator, the other way round).

mod extensions;
mod format;

use extensions::{parse_history, parse_presence, parse_subscribe_options};
pub use extensions::{HistoryRequest, PresenceRequest, SubscribeOptions};
use format::error_body;
pub use format::{
    action_call_frame, action_error_frame, action_response_frame, auth_frame, authenticated_frame,
    channel_frame, client_hello_frame, error_frame, gap_frame, hello_frame, messages_dropped_frame,
    parse_server_frame, presence_event_frame, pub_frame, refresh_frame, subscribe_frame,
    subscribe_with_frame, subscribed_at_frame, subscribed_frame, unsubscribe_frame,
    unsubscribed_frame, ServerFrame,
};

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
    /// `subscribe <channel> <json object>`: a subscribe with options (an extension).
    SubscribeWith {
        /// Channel name.
        channel: &'a str,
        /// What the object said.
        options: SubscribeOptions,
    },
    /// `auth <token>`: the connection's identity (an extension), first or in band.
    Auth(&'a str),
    /// `history <channel> {"requestUid":…,"since":N,"limit":L}`: read a channel's
    /// history (an extension), answered like an action.
    History(HistoryRequest),
    /// `presence <channel> {"requestUid":…}`: who is in a channel with presence (an
    /// extension), answered like an action.
    Presence(PresenceRequest),
    /// `presence_stats <channel> {"requestUid":…}`: how many are in it (an extension),
    /// answered like an action.
    PresenceStats(PresenceRequest),
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
        // Options are a JSON object after the channel; any other space is in the name,
        // which refuses it.
        "subscribe"
            if rest
                .and_then(|rest| rest.split_once(' '))
                .is_some_and(|(_, json)| json.starts_with('{')) =>
        {
            let (channel, json) = rest.unwrap_or_default().split_once(' ').unwrap_or_default();
            if let Some(err) = channel_error(channel, limits) {
                return Err(err);
            }
            let options =
                parse_subscribe_options(json).map_err(|err| err.about_channel(channel))?;
            Ok(ClientFrame::SubscribeWith { channel, options })
        }
        "history" => parse_history(rest.unwrap_or(""), limits).map(ClientFrame::History),
        "presence" => {
            parse_presence(keyword, rest.unwrap_or(""), limits).map(ClientFrame::Presence)
        }
        "presence_stats" => {
            parse_presence(keyword, rest.unwrap_or(""), limits).map(ClientFrame::PresenceStats)
        }
        "auth" => match rest.map(str::trim).filter(|token| !token.is_empty()) {
            Some(token) => Ok(ClientFrame::Auth(token)),
            None => Err(FrameError::new(ErrorCode::BadFrame, "`auth` needs a token")),
        },
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
