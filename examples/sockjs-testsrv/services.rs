//! The SockJS protocol's standard test services and comet's test actions, in one place:
//! `main.rs` serves them, and the SockJS integration tests (`tests/sockjs_support`)
//! include this file with `#[path]`, so that the suites and the tests meet the same
//! services.

use actix_web::HttpRequest;
use bytestring::ByteString;
use comet::transport::sockjs::{ConfigError, SessionHandler, SessionSink, SockJs, SockJsConfig};
use comet::{Action, ActionError, ActionResult, CloseCode, CometBuilder, Payload};
use serde_json::json;

/// Bytes after which the test services end a streaming response: small, so that
/// suites see the limit work.
pub const RESPONSE_LIMIT: usize = 4096;

/// Writes every message back to its session.
pub struct Echo(SessionSink);

impl SessionHandler for Echo {
    fn message(&mut self, message: ByteString) {
        if let Err(err) = self.0.send(message) {
            log::debug!("echo: message dropped: {err}");
        }
    }
}

/// Takes nothing: the session is closed as it opens.
pub struct Closed;

impl SessionHandler for Closed {
    fn message(&mut self, _: ByteString) {}
}

/// The `echo` service: an [`Echo`] per session.
pub fn echo(sink: SessionSink, _: &HttpRequest) -> Box<dyn SessionHandler> {
    Box::new(Echo(sink))
}

/// The `close` service: closes every session at once with `c[3000,"Go away!"]`.
pub fn close(sink: SessionSink, _: &HttpRequest) -> Box<dyn SessionHandler> {
    sink.close(CloseCode::Other(3000, "Go away!"));
    Box::new(Closed)
}

/// The options the test services share: the defaults with a [`RESPONSE_LIMIT`]-byte
/// response limit, and the iframe page's client library from `sockjs_url` if given.
pub fn base(sockjs_url: Option<&str>) -> SockJsConfig {
    let defaults = SockJsConfig::default();
    SockJsConfig {
        response_limit: RESPONSE_LIMIT,
        sockjs_url: sockjs_url.map_or(defaults.sockjs_url.clone(), str::to_owned),
        ..defaults
    }
}

/// The protocol suite's four endpoints with their prefixes: `/echo`, `/close`,
/// `/disabled_websocket_echo` (no WebSocket transports) and `/cookie_needed_echo`
/// (`JSESSIONID`), each on `base` with what it changes.
pub fn protocol_endpoints(base: SockJsConfig) -> Result<Vec<(&'static str, SockJs)>, ConfigError> {
    Ok(vec![
        ("/echo", SockJs::new(base.clone(), echo)?),
        ("/close", SockJs::new(base.clone(), close)?),
        (
            "/disabled_websocket_echo",
            SockJs::new(
                SockJsConfig {
                    websocket: false,
                    ..base.clone()
                },
                echo,
            )?,
        ),
        (
            "/cookie_needed_echo",
            SockJs::new(
                SockJsConfig {
                    cookie_needed: true,
                    ..base
                },
                echo,
            )?,
        ),
    ])
}

/// Registers the test actions `test/echo` and `test/publish` on `builder`.
pub fn test_actions(builder: CometBuilder) -> CometBuilder {
    builder
        .action_fn("test/echo", test_echo)
        .action_fn("test/publish", test_publish)
}

/// `test/echo`: answers the params and the caller's transport.
async fn test_echo(action: Action) -> ActionResult {
    Ok(json!({
        "echo": action.params(),
        "transport": action.connection().transport,
    }))
}

/// `test/publish {channel, message, count?}`: publishes `message` `count` times (default
/// once) through the server API.
async fn test_publish(action: Action) -> ActionResult {
    let bad = |what: &str| ActionError::new("bad_params", what);
    let channel = action
        .str_param("channel")
        .ok_or_else(|| bad("`channel` (a string) is required"))?
        .to_owned();
    let message = action
        .param("message")
        .cloned()
        .ok_or_else(|| bad("`message` is required"))?;
    let count = action.param("count").and_then(|c| c.as_u64()).unwrap_or(1);
    for _ in 0..count.min(10_000) {
        action
            .node()
            .publish(&channel, Payload::from(&message))
            .await
            .map_err(|err| ActionError::new("unavailable", err.to_string()))?;
    }
    Ok(json!({ "published": count, "channel": channel }))
}
