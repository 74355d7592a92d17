//! The one table of error codes and close codes, shared by the server and the JS client.
//!
//! Error codes travel in `action {"requestUid":…,"error":{"code":…}}` and
//! `error {"code":…}` frames (see [`crate::protocol`]). Close codes end a transport
//! (WebSocket close frame, SockJS `c[code,"reason"]`). `client/codes.js` mirrors this file;
//! `docs/PROTOCOL.md` prints both tables.

use std::fmt;

use serde::{Serialize, Serializer};

/// Why a frame, a subscription or an action call failed.
///
/// Codes are short snake_case words, stable across versions: clients branch on them.
/// Action handlers may answer codes of their own (see [`crate::ActionError::new`]); those
/// travel as [`ErrorCode::Custom`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame is empty, has an unknown keyword, or misses a part (channel, route,
    /// payload, `requestUid`).
    BadFrame,
    /// The JSON of an `action` frame does not parse, or is not an object.
    BadJson,
    /// The channel name is empty, too long, or holds a control character.
    BadChannel,
    /// The route is empty, too long, or holds a control character.
    BadRoute,
    /// The frame is larger than `max_frame_bytes`.
    TooLarge,
    /// No process serves this action route.
    NotFound,
    /// The connection may not do this: a namespace's rule, a user channel of other users,
    /// a subscription token that does not fit, or a hook refused it.
    Forbidden,
    /// An `auth` frame's token was not accepted, on a connection that keeps its earlier
    /// identity (a failed refresh).
    Unauthorized,
    /// The action route needs an authenticated caller.
    NotAuthenticated,
    /// Over a per-connection rate limit (publishes, actions or subscribes per second); the
    /// frame was dropped.
    RateLimited,
    /// The action handler returned an error, panicked, or is gone.
    HandlerFailed,
    /// No answer within `action_timeout`.
    Timeout,
    /// The hub or the queue could not be reached (e.g. Redis is down); try again later.
    Unavailable,
    /// The connection already holds `max_channels_per_connection` subscriptions.
    TooManyChannels,
    /// The connection already waits for `max_pending_actions` answers.
    TooManyPending,
    /// A bug on our side; the log has the details.
    Internal,
    /// The client read too slowly and frames queued for it were dropped, oldest first
    /// ([`SlowConsumerPolicy::DropOldest`](crate::SlowConsumerPolicy)); the frames after
    /// this notice follow the gap.
    MessagesDropped,
    /// A code chosen by an action handler.
    Custom(String),
}

impl ErrorCode {
    /// Every code of the server itself (all but [`ErrorCode::Custom`]), e.g. to check
    /// that a client knows them all.
    pub const BUILTIN: &'static [ErrorCode] = &[
        ErrorCode::BadFrame,
        ErrorCode::BadJson,
        ErrorCode::BadChannel,
        ErrorCode::BadRoute,
        ErrorCode::TooLarge,
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::Unauthorized,
        ErrorCode::NotAuthenticated,
        ErrorCode::RateLimited,
        ErrorCode::HandlerFailed,
        ErrorCode::Timeout,
        ErrorCode::Unavailable,
        ErrorCode::TooManyChannels,
        ErrorCode::TooManyPending,
        ErrorCode::Internal,
        ErrorCode::MessagesDropped,
    ];

    /// The code as it travels on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadChannel => "bad_channel",
            ErrorCode::BadRoute => "bad_route",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::HandlerFailed => "handler_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::TooManyChannels => "too_many_channels",
            ErrorCode::TooManyPending => "too_many_pending",
            ErrorCode::Internal => "internal",
            ErrorCode::MessagesDropped => "messages_dropped",
            ErrorCode::Custom(code) => code,
        }
    }

    /// Reads a code from the wire; unknown words become [`ErrorCode::Custom`].
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "bad_frame" => ErrorCode::BadFrame,
            "bad_json" => ErrorCode::BadJson,
            "bad_channel" => ErrorCode::BadChannel,
            "bad_route" => ErrorCode::BadRoute,
            "too_large" => ErrorCode::TooLarge,
            "not_found" => ErrorCode::NotFound,
            "forbidden" => ErrorCode::Forbidden,
            "unauthorized" => ErrorCode::Unauthorized,
            "not_authenticated" => ErrorCode::NotAuthenticated,
            "rate_limited" => ErrorCode::RateLimited,
            "handler_failed" => ErrorCode::HandlerFailed,
            "timeout" => ErrorCode::Timeout,
            "unavailable" => ErrorCode::Unavailable,
            "too_many_channels" => ErrorCode::TooManyChannels,
            "too_many_pending" => ErrorCode::TooManyPending,
            "internal" => ErrorCode::Internal,
            "messages_dropped" => ErrorCode::MessagesDropped,
            other => ErrorCode::Custom(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why the server ends a connection. Codes below 4000 are the WebSocket standard ones;
/// 4000–4099 mean "reconnect" (to this or another process), 4100–4199 "do not reconnect".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: closed on purpose (server-side `disconnect`, or the client asked).
    Normal,
    /// 1001: the process is shutting down; reconnect, the balancer sends you elsewhere.
    GoingAway,
    /// 1007: a text message was not valid UTF-8 (RFC 6455).
    InvalidData,
    /// 1009: a frame exceeded the transport's hard size cap.
    MessageTooBig,
    /// 1011: an unexpected failure on the server.
    InternalError,
    /// 4000: the client sent nothing (not even a pong) for `client_timeout`.
    HeartbeatTimeout,
    /// 4001: the client read too slowly and its outbound queue filled up.
    SlowConsumer,
    /// 4002: the client kept sending past its rate limits (refused over `flood_limit`
    /// times within about 10 s); reconnect after a back-off.
    RateLimited,
    /// 4003: the client's ip holds or opens too many connections (per-ip limits);
    /// reconnect later.
    TooManyConnections,
    /// 4100: the server refuses this connection (an authenticate hook refused it);
    /// reconnecting will not help.
    Forbidden,
    /// 4101: authentication is required and was missing or failed (no token, bad
    /// signature, wrong algorithm, malformed; a frame other than `auth` sent first).
    Unauthorized,
    /// 4102: the connection's token expired (at connect, or no new token by `exp` plus the
    /// grace); fetch a new token, then reconnect.
    TokenExpired,
    /// 4103: a connection that must authenticate sent no `auth` within `auth_timeout`.
    AuthTimeout,
    /// A code and reason of a transport or an application of its own, e.g. SockJS's
    /// 3000 "Broken framing.", or a test server's 3000 "Go away!".
    Other(u16, &'static str),
}

impl CloseCode {
    /// Every code of the server itself (all but [`CloseCode::Other`]), e.g. to check that
    /// a client knows them all.
    pub const BUILTIN: &'static [CloseCode] = &[
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::InvalidData,
        CloseCode::MessageTooBig,
        CloseCode::InternalError,
        CloseCode::HeartbeatTimeout,
        CloseCode::SlowConsumer,
        CloseCode::RateLimited,
        CloseCode::TooManyConnections,
        CloseCode::Forbidden,
        CloseCode::Unauthorized,
        CloseCode::TokenExpired,
        CloseCode::AuthTimeout,
    ];

    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::InvalidData => 1007,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::HeartbeatTimeout => 4000,
            CloseCode::SlowConsumer => 4001,
            CloseCode::RateLimited => 4002,
            CloseCode::TooManyConnections => 4003,
            CloseCode::Forbidden => 4100,
            CloseCode::Unauthorized => 4101,
            CloseCode::TokenExpired => 4102,
            CloseCode::AuthTimeout => 4103,
            CloseCode::Other(code, _) => code,
        }
    }

    /// A short human reason sent beside the code.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "Normal closure",
            CloseCode::GoingAway => "Server shutting down",
            CloseCode::InvalidData => "Invalid UTF-8",
            CloseCode::MessageTooBig => "Frame too large",
            CloseCode::InternalError => "Internal error",
            CloseCode::HeartbeatTimeout => "Heartbeat timeout",
            CloseCode::SlowConsumer => "Slow consumer",
            CloseCode::RateLimited => "Rate limit exceeded",
            CloseCode::TooManyConnections => "Too many connections",
            CloseCode::Forbidden => "Forbidden",
            CloseCode::Unauthorized => "Unauthorized",
            CloseCode::TokenExpired => "Token expired",
            CloseCode::AuthTimeout => "Authentication timeout",
            CloseCode::Other(_, reason) => reason,
        }
    }

    /// Whether a client should reconnect after this code.
    pub fn should_reconnect(self) -> bool {
        !(4100..=4199).contains(&self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_code_round_trips() {
        for code in ErrorCode::BUILTIN {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ErrorCode::parse("nick_taken"),
            ErrorCode::Custom("nick_taken".into())
        );
    }

    #[test]
    fn close_codes_fall_in_their_ranges() {
        assert_eq!(CloseCode::GoingAway.code(), 1001);
        assert!(CloseCode::SlowConsumer.should_reconnect());
        assert!(!CloseCode::Forbidden.should_reconnect());
        assert!(!CloseCode::TokenExpired.should_reconnect());
        assert!(CloseCode::RateLimited.should_reconnect());
    }
}
