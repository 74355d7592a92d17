//! The SockJS protocol's standard test services, for conformance suites:
//! `cargo run --example sockjs-testsrv -- --bind 127.0.0.1:8081`.
//!
//! | prefix | service |
//! | --- | --- |
//! | `/echo` | writes every message back; streaming responses end after 4,096 bytes |
//! | `/close` | closes every session at once with `c[3000,"Go away!"]` |
//! | `/disabled_websocket_echo` | `/echo` without the WebSocket transports |
//! | `/cookie_needed_echo` | `/echo` with the `JSESSIONID` cookie |
//! | `/comet` | comet itself (jii frames over SockJS), with the actions `test/echo` and `test/publish`; streaming responses end after 4,096 bytes |
//!
//! Messages on the first four are plain SockJS messages, not comet frames: these
//! endpoints run their own `SockJsService`s instead of comet's connections.
//! `docs/SOCKJS.md` tells how to point the sockjs-protocol suite at it;
//! `tests/sockjs-node/` drives `sockjs-client` against `/comet` and `/echo`.

use actix_web::{App, HttpRequest, HttpServer};
use bytestring::ByteString;
use clap::Parser;
use comet::transport::sockjs::{SessionHandler, SessionSink, SockJs, SockJsConfig};
use comet::CloseCode;
use comet::{Action, ActionError, ActionResult, Comet, Payload};
use serde_json::json;

/// The SockJS protocol test server.
#[derive(Parser, Debug)]
#[command(about = "SockJS protocol test services (echo, close, ...)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    bind: String,
    /// The SockJS client library the iframe page loads (for the iframe transports);
    /// default: sockjs-client 1.6.1 from a CDN.
    #[arg(long)]
    sockjs_url: Option<String>,
}

/// Writes every message back to its session.
struct Echo(SessionSink);

impl SessionHandler for Echo {
    fn message(&mut self, message: ByteString) {
        if let Err(err) = self.0.send(message) {
            log::debug!("echo: message dropped: {err}");
        }
    }
}

/// Takes nothing: the session is closed as it opens.
struct Closed;

impl SessionHandler for Closed {
    fn message(&mut self, _: ByteString) {}
}

fn echo(sink: SessionSink, _: &HttpRequest) -> Box<dyn SessionHandler> {
    Box::new(Echo(sink))
}

fn close(sink: SessionSink, _: &HttpRequest) -> Box<dyn SessionHandler> {
    sink.close(CloseCode::Other(3000, "Go away!"));
    Box::new(Closed)
}

/// The test services share these: a small response limit, so that tests see it work.
fn base(sockjs_url: &Option<String>) -> SockJsConfig {
    let defaults = SockJsConfig::default();
    SockJsConfig {
        response_limit: 4096,
        sockjs_url: sockjs_url.clone().unwrap_or(defaults.sockjs_url.clone()),
        ..defaults
    }
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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let base = || base(&args.sockjs_url);
    let invalid = std::io::Error::other;
    let echo_endpoint = SockJs::new(base(), echo).map_err(invalid)?;
    let close_endpoint = SockJs::new(base(), close).map_err(invalid)?;
    let no_websocket = SockJsConfig {
        websocket: false,
        ..base()
    };
    let no_websocket_endpoint = SockJs::new(no_websocket, echo).map_err(invalid)?;
    let cookie = SockJsConfig {
        cookie_needed: true,
        ..base()
    };
    let cookie_endpoint = SockJs::new(cookie, echo).map_err(invalid)?;
    let comet = Comet::builder()
        .sockjs(base())
        .action_fn("test/echo", test_echo)
        .action_fn("test/publish", test_publish)
        .build()
        .map_err(std::io::Error::other)?;
    let app_comet = comet.clone();

    let server = HttpServer::new(move || {
        App::new()
            .service(echo_endpoint.scope("/echo"))
            .service(close_endpoint.scope("/close"))
            .service(no_websocket_endpoint.scope("/disabled_websocket_echo"))
            .service(cookie_endpoint.scope("/cookie_needed_echo"))
            .service(app_comet.scope("/comet"))
    })
    // Notice at once a client that closes a waiting poll or stream.
    .h1_allow_half_closed(false)
    // Frames go out when written, not after the client's delayed ACK.
    .tcp_nodelay(true)
    .bind(&args.bind)?;
    for addr in server.addrs() {
        // Scripts wait for this line to learn the port (e.g. with --bind 127.0.0.1:0).
        println!("sockjs-testsrv listening on http://{addr}");
    }
    server.run().await?;
    comet.shutdown().await;
    Ok(())
}
