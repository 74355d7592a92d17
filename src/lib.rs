//! **comet**: real-time messaging for actix-web, the successor of jii comet.
//!
//! Browsers and services hold a connection (WebSocket, or SockJS) to any of many server
//! processes; over it they subscribe to channels, publish to them, and call server
//! actions. Processes act as one through a hub and an action queue; one process with the
//! in-memory hub and queue is the default and needs nothing installed.
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use comet::{Action, Comet};
//! use serde_json::json;
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let comet = Comet::builder()
//!         .action_fn("site/test", |action: Action| async move {
//!             Ok(json!({ "echo": action.params() }))
//!         })
//!         .build()
//!         .expect("valid configuration");
//!
//!     let app_comet = comet.clone();
//!     HttpServer::new(move || App::new().service(app_comet.scope("/comet")))
//!         .tcp_nodelay(true) // comet writes at once; no 40 ms Nagle delays
//!         .bind(("127.0.0.1", 4100))?
//!         .run()
//!         .await?;
//!
//!     comet.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//!
//! | where | what |
//! | --- | --- |
//! | `src/lib.rs` | [`Comet`]: the handle, and [`Comet::scope`] to mount it |
//! | `src/builder.rs` | [`CometBuilder`]: configuration and parts |
//! | `src/server.rs` | the process roles: [`Server`] (HTTP, on [`Listeners`] bound first), [`HubServer`] (actions only) |
//! | `src/cli.rs` | [`cli::Settings`]: flags, environment and config file of a process |
//! | `src/demo.rs` | the seed's demo actions (`site/test`, `site/publish`, `site/sleep`) |
//! | `src/transport/` | transports on actix-web: raw WebSocket, SockJS (`transport/sockjs/`) |
//! | `src/api/` | the HTTP server API, `POST <prefix>/api/<method>` (docs/API.md) |
//! | `src/metrics.rs` | Prometheus `GET /metrics` on `--metrics-bind` |
//! | `src/admin/` | the admin page at `<prefix>/admin`: its files and `stats` |
//! | `src/health.rs` | `<prefix>/health/live` and `<prefix>/health/ready` |
//! | `src/client_js.rs` | the JS client (`client/`), embedded and served at `<prefix>/client.js` |
//! | `src/request_info.rs` | what a connection's HTTP request tells |
//! | `src/bin/cometd.rs` | the standalone server |
//! | `actors/` (crate `comet-actors`) | the actor system: protocol, connections, hub, queue, workers |

#![warn(missing_docs)]

mod admin;
mod api;
mod builder;
pub mod cli;
mod client_js;
pub mod demo;
mod health;
pub mod metrics;
pub mod request_info;
mod server;
pub mod transport;

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, Scope};

pub use builder::{BuildError, CometBuilder};
pub use comet_actors::{
    self as actors, auth, handler_fn, protocol, Action, ActionError, ActionHandler, ActionResult,
    ChannelMessage, CloseCode, ConnectionEvent, ConnectionId, ConnectionInfo, ErrorCode, Hub,
    Identity, Limits, MemoryBroker, MemoryHub, MemoryQueue, Node, NodeConfig, NodeError, Payload,
    Queue, RedisClusterHub, RedisConfig, RedisHub, RedisQueue, RedisSetupError, Router, Security,
    SlowConsumerPolicy,
};
pub use server::{HubServer, Listeners, Running, Server};
pub use transport::socketio::SocketIo;
pub use transport::sockjs::{SockJs, SockJsConfig};

/// Settings of the HTTP side (transports), beside the node's [`NodeConfig`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WebSettings {
    /// Take the client's ip from `X-Forwarded-For` (only behind a proxy that sets it).
    /// Default off: the peer address is used.
    pub trust_proxy_headers: bool,
    /// The SockJS options (disconnect delay, response limit, WebSocket on or off,
    /// cookies, origins, client library URL, most sessions); see [`SockJsConfig`].
    pub sockjs: SockJsConfig,
    /// The key of the HTTP server API (`<prefix>/api/<method>`, see docs/API.md); none
    /// (the default) turns the API off.
    pub api_key: Option<String>,
    /// The password of the admin page (`<prefix>/admin`); the API key signs in too. With
    /// neither, the page is off.
    pub admin_password: Option<String>,
}

impl std::fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSettings")
            .field("trust_proxy_headers", &self.trust_proxy_headers)
            .field("sockjs", &self.sockjs)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

/// A running comet: the [`Node`] (server API, reachable through `Deref`) plus what the
/// HTTP side needs. Cheap to clone; clone it into your `HttpServer` factory.
#[derive(Clone)]
pub struct Comet {
    node: Node,
    settings: Arc<WebSettings>,
    sockjs: SockJs,
    socketio: SocketIo,
    /// Set by [`shutdown`](Comet::shutdown): `/health/ready` answers 503 from then on.
    draining: Arc<AtomicBool>,
}

impl Comet {
    /// Starts configuring a comet; see [`CometBuilder`].
    pub fn builder() -> CometBuilder {
        CometBuilder::new()
    }

    /// The node: publish, send, subscribe, list connections, and so on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The HTTP-side settings.
    pub fn settings(&self) -> &WebSettings {
        &self.settings
    }

    /// The SockJS endpoint every [`scope`](Comet::scope) serves (sessions are shared
    /// by all of them).
    pub fn sockjs(&self) -> &SockJs {
        &self.sockjs
    }

    /// An actix-web scope at `path` (e.g. `/comet`) serving every transport:
    /// `GET <path>/websocket` is the raw WebSocket endpoint (jii frames, no SockJS
    /// framing); everything else under `<path>` is SockJS (`<path>/info`,
    /// `<path>/<server>/<session>/<transport>`, …: point `sockjs-client` at
    /// `http://host<path>`). See [`transport::sockjs`]. `<path>/socket.io/` is Socket.IO
    /// (point `socket.io-client` at it with `path: "<path>/socket.io"`); see
    /// [`transport::socketio`].
    /// It also serves the JS client: `GET <path>/client.js` and the modules it imports,
    /// the health checks `GET <path>/health/live` and `GET <path>/health/ready`
    /// (see docs/DEPLOYMENT.md), with an API key the HTTP server API,
    /// `POST <path>/api/<method>` (see docs/API.md), and with an API key or an admin
    /// password the admin page, `GET <path>/admin`.
    ///
    /// Set `tcp_nodelay(true)` on the server, as comet's own [`Server`] does: comet
    /// writes each message as soon as it is published, and with Nagle's algorithm on, a
    /// small frame can wait up to 40 ms for the client's delayed ACK.
    ///
    /// ```no_run
    /// # use actix_web::{App, HttpServer};
    /// # async fn run(comet: comet::Comet) -> std::io::Result<()> {
    /// HttpServer::new(move || App::new().service(comet.scope("/comet")))
    ///     .tcp_nodelay(true)
    ///     .bind(("127.0.0.1", 4100))?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn scope(&self, path: &str) -> Scope {
        let scope = web::scope(path)
            .app_data(web::Data::new(self.clone()))
            // The client's exact routes come before SockJS's `/{server}/{session}/…`.
            .configure(client_js::configure)
            .configure(health::configure)
            .configure(api::configure)
            .configure(admin::configure);
        scope.configure(|cfg| {
            self.socketio.configure(cfg, "/socket.io");
            self.sockjs.configure(cfg);
        })
    }

    /// Whether [`shutdown`](Comet::shutdown) has begun (`/health/ready` then answers 503).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The Socket.IO endpoint every [`scope`](Comet::scope) serves at
    /// `<path>/socket.io/` (long-polling sessions are shared by all of them).
    pub fn socketio(&self) -> &SocketIo {
        &self.socketio
    }

    /// Shuts down gracefully: clients are told to reconnect elsewhere (close code 1001),
    /// running actions may finish for up to `shutdown_timeout`, no new call is taken.
    pub async fn shutdown(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.node.shutdown().await;
    }
}

impl Deref for Comet {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

/// The README's examples, compiled as doc tests so that they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
