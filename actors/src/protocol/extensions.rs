//! The parts of the extension frames that carry options: `subscribe <channel> {…}`,
//! `history <channel> {…}`, `presence <channel> {…}` and `presence_stats <channel> {…}`.

use serde_json::Value;

use super::{channel_error, FrameError, ParseLimits, RequestUid};
use crate::codes::ErrorCode;

/// The options of `subscribe <channel> <json object>`. Keys this server does not know are
/// ignored, so that clients can send options of newer servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// `"token"`: a subscription token (a JWT with `sub`, `channel`, `exp`).
    pub token: Option<String>,
    /// `"recover": true`: positions with every message, and, with `offset` and `epoch`,
    /// the publications missed since then first.
    pub recover: bool,
    /// `"offset"` and `"epoch"`: where to resume from.
    pub since: Option<(u64, String)>,
    /// `"joinLeave": true`: join and leave events of the channel's presence.
    pub join_leave: bool,
}

/// The parts of a `presence` or `presence_stats` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceRequest {
    /// The channel.
    pub channel: String,
    /// The client's id for the request, echoed in the answer.
    pub request_uid: RequestUid,
}

/// The parts of a `history` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRequest {
    /// The channel.
    pub channel: String,
    /// The client's id for the request, echoed in the answer.
    pub request_uid: RequestUid,
    /// Publications after this offset; `None`: the newest.
    pub since: Option<u64>,
    /// At most this many (the namespace's `history_size` when left out).
    pub limit: Option<usize>,
}

/// Reads the options of `subscribe <channel> <json object>`.
pub(super) fn parse_subscribe_options(json: &str) -> Result<SubscribeOptions, FrameError> {
    let map = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(FrameError::new(
                ErrorCode::BadJson,
                "the subscribe options must be a JSON object",
            ))
        }
        Err(err) => {
            return Err(FrameError::new(
                ErrorCode::BadJson,
                format!("the subscribe options do not parse: {err}"),
            ))
        }
    };
    let token = match map.get("token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => Some(token.clone()),
        Some(_) => {
            return Err(FrameError::new(
                ErrorCode::BadJson,
                "the subscribe option `token` must be a string",
            ))
        }
    };
    let recover = map.get("recover") == Some(&Value::Bool(true));
    let since = match (map.get("offset"), map.get("epoch")) {
        (None | Some(Value::Null), None | Some(Value::Null)) => None,
        (Some(offset), Some(Value::String(epoch))) if offset.as_u64().is_some() => {
            Some((offset.as_u64().unwrap_or_default(), epoch.clone()))
        }
        _ => return Err(FrameError::new(
            ErrorCode::BadJson,
            "the subscribe options `offset` (a whole number) and `epoch` (a string) go together",
        )),
    };
    if since.is_some() && !recover {
        return Err(FrameError::new(
            ErrorCode::BadJson,
            "`offset` and `epoch` resume a subscription with `\"recover\":true`",
        ));
    }
    Ok(SubscribeOptions {
        token,
        recover,
        since,
        join_leave: map.get("joinLeave") == Some(&Value::Bool(true)),
    })
}

/// Reads `<keyword> <channel> {"requestUid":…, …}`: the channel, the request's id and the
/// rest of the object.
fn parse_channel_request<'a>(
    keyword: &str,
    rest: &'a str,
    limits: &ParseLimits,
) -> Result<(&'a str, RequestUid, serde_json::Map<String, Value>), FrameError> {
    let (channel, json) = rest.split_once(' ').unwrap_or((rest, ""));
    if channel.is_empty() || json.trim().is_empty() {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            format!("`{keyword}` needs a channel and a JSON object with a requestUid"),
        ));
    }
    let mut map = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(FrameError::new(
                ErrorCode::BadJson,
                format!("the {keyword} request must be a JSON object"),
            )
            .about_channel(channel))
        }
    };
    let Some(request_uid) = map.remove("requestUid").and_then(RequestUid::from_value) else {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            format!("the {keyword} request needs a requestUid (a non-empty string or a number)"),
        )
        .about_channel(channel));
    };
    if let Some(err) = channel_error(channel, limits) {
        return Err(err.about_request(request_uid));
    }
    Ok((channel, request_uid, map))
}

/// Reads `presence <channel> {"requestUid":…}` (or `presence_stats`, the `keyword`).
pub(super) fn parse_presence(
    keyword: &str,
    rest: &str,
    limits: &ParseLimits,
) -> Result<PresenceRequest, FrameError> {
    let (channel, request_uid, _) = parse_channel_request(keyword, rest, limits)?;
    Ok(PresenceRequest {
        channel: channel.to_owned(),
        request_uid,
    })
}

/// Reads `history <channel> {"requestUid":…,"since":N,"limit":L}`.
pub(super) fn parse_history(
    rest: &str,
    limits: &ParseLimits,
) -> Result<HistoryRequest, FrameError> {
    let (channel, request_uid, map) = parse_channel_request("history", rest, limits)?;
    let number = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            FrameError::new(
                ErrorCode::BadJson,
                format!("the history option `{key}` must be a whole number"),
            )
            .about_request(request_uid.clone())
        }),
    };
    let since = number("since")?;
    let limit = number("limit")?.map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(HistoryRequest {
        channel: channel.to_owned(),
        request_uid,
        since,
        limit,
    })
}
