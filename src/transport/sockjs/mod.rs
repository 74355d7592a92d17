//! The SockJS transport: the whole SockJS 0.3 server protocol, so that the stock
//! `sockjs-client` works on every transport it has (WebSocket, xhr-streaming,
//! eventsource, htmlfile, xhr-polling, jsonp-polling, and their iframe variants).
//!
//! [`Comet::scope`](crate::Comet::scope) mounts it for comet's own protocol: each
//! session is a comet `Connection`, exactly as over the raw WebSocket. [`SockJs`] mounts
//! it in front of any other [`SockJsService`] (the protocol test server's echo, say).
//!
//! Under a prefix (e.g. `/comet`) an endpoint serves:
//!
//! | path | what |
//! | --- | --- |
//! | `<prefix>`, `<prefix>/` | the greeting |
//! | `<prefix>/info` | what the server supports (GET), CORS preflight (OPTIONS) |
//! | `<prefix>/iframe.html`, `<prefix>/iframe-<version>.html` | the iframe page |
//! | `<prefix>/<server>/<session>/<transport>` | a session's traffic |
//! | `<prefix>/websocket` | the raw WebSocket |
//!
//! # Layout
//!
//! | file | what it holds |
//! | --- | --- |
//! | `mod.rs` | [`SockJs`]: an endpoint, and its routes |
//! | `config.rs` | [`SockJsConfig`]: every option with its default |
//! | `frames.rs` | the wire format: frames, escaping, decoding, per-transport wrapping |
//! | `session.rs` | the session actor of the HTTP transports, and the registry of sessions |
//! | `receiver.rs` | one receiving request: a poll's or a stream's response body |
//! | `connection_service.rs` | [`ConnectionService`]: a comet connection per client |
//! | `endpoints.rs` | the HTTP session transports and their dispatch |
//! | `websocket.rs` | SockJS's framing on the one WebSocket engine (`transport/socket.rs`) |
//!
//! The application side ([`SockJsService`], [`SessionHandler`], [`SessionSink`]) is in
//! `transport/service.rs`: the raw WebSocket serves the same applications.
//! | `info.rs` | greeting, `/info`, the iframe page |
//! | `headers.rs` | CORS, caching, the `JSESSIONID` cookie, error answers |
//!
//! # Detecting clients that leave
//!
//! actix-web notices a client that closed a waiting poll or an idle stream only when it
//! next writes to it (at the next heartbeat), unless the server is built with
//! `HttpServer::h1_allow_half_closed(false)`: then at once, and the session ends with
//! `c[1002,"Connection interrupted"]` as the protocol suggests. The examples do so.

mod config;
mod connection_service;
mod endpoints;
pub mod frames;
pub(crate) mod headers;
mod info;
mod receiver;
mod session;
mod websocket;

use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::{web, Scope};
use comet_actors::Limits;
use thiserror::Error;

pub use super::service::{SessionHandler, SessionSink, SockJsService};
pub use config::{SockJsConfig, DEFAULT_SOCKJS_URL};
pub use connection_service::ConnectionService;

use info::IframePage;
use session::Sessions;

/// A configuration [`SockJs::new`] cannot use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid SockJS configuration: {0}")]
pub struct ConfigError(pub String);

/// What the handlers of one endpoint share.
pub(crate) struct Endpoint {
    pub(crate) config: Arc<SockJsConfig>,
    /// Every client's bounds: outbound queue, slow-consumer policy, the transport cap.
    pub(crate) limits: Limits,
    pub(crate) service: Arc<dyn SockJsService>,
    pub(crate) sessions: Sessions,
    pub(crate) iframe: IframePage,
}

/// A SockJS endpoint: its options, its application, its sessions. Cheap to clone;
/// clone it into your `HttpServer` factory so every worker shares the sessions.
///
/// ```no_run
/// use actix_web::{App, HttpRequest, HttpServer};
/// use bytestring::ByteString;
/// use comet::transport::sockjs::{SessionHandler, SessionSink, SockJs, SockJsConfig};
///
/// /// Writes every message back.
/// struct Echo(SessionSink);
///
/// impl SessionHandler for Echo {
///     fn message(&mut self, message: ByteString) {
///         let _ = self.0.send(message);
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let echo = SockJs::new(SockJsConfig::default(), |sink: SessionSink, _: &HttpRequest| {
///     Box::new(Echo(sink)) as Box<dyn SessionHandler>
/// })
/// .expect("valid configuration");
/// HttpServer::new(move || App::new().service(echo.scope("/echo")))
///     .h1_allow_half_closed(false)
///     .bind(("127.0.0.1", 8081))?
///     .run()
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct SockJs {
    endpoint: Arc<Endpoint>,
}

impl SockJs {
    /// An endpoint serving `service` with `config`, each client bounded by the default
    /// [`Limits`].
    pub fn new(config: SockJsConfig, service: impl SockJsService) -> Result<SockJs, ConfigError> {
        SockJs::with_limits(config, Limits::default(), service)
    }

    /// An endpoint serving `service` with `config`, each client bounded by `limits`: its
    /// outbound queue (`outbound_queue`, `outbound_queue_bytes`, `slow_consumer`) and the
    /// largest message or request body read (`Limits::transport_cap`).
    pub fn with_limits(
        config: SockJsConfig,
        limits: Limits,
        service: impl SockJsService,
    ) -> Result<SockJs, ConfigError> {
        config.validate().map_err(ConfigError)?;
        let iframe = IframePage::new(&config.sockjs_url);
        Ok(SockJs {
            endpoint: Arc::new(Endpoint {
                config: Arc::new(config),
                limits,
                service: Arc::new(service),
                sessions: Sessions::default(),
                iframe,
            }),
        })
    }

    /// The endpoint's options.
    pub fn config(&self) -> &SockJsConfig {
        &self.endpoint.config
    }

    /// How many sessions (other than WebSocket ones) are open right now.
    pub fn session_count(&self) -> usize {
        self.endpoint.sessions.len()
    }

    /// A scope at `prefix` (e.g. `/echo`) serving the whole endpoint.
    pub fn scope(&self, prefix: &str) -> Scope {
        web::scope(prefix).configure(|cfg| self.configure(cfg))
    }

    /// Adds the endpoint's routes, raw WebSocket included, to a scope of your own.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        self.routes(cfg, true);
    }

    /// The routes; `raw_websocket` false leaves `/websocket` to the caller.
    pub(crate) fn routes(&self, cfg: &mut web::ServiceConfig, raw_websocket: bool) {
        cfg.app_data(web::Data::from(self.endpoint.clone()))
            .route("", web::get().to(info::greeting))
            .route("/", web::get().to(info::greeting))
            .route("/info", web::route().to(info::info))
            .route(
                r"/{file:iframe[0-9A-Za-z._-]*\.html}",
                web::get().to(info::iframe),
            )
            .service(
                web::resource("/{server}/{session}/{transport}")
                    .wrap_fn(|mut req, service| {
                        websocket::accept_draft_versions(&mut req);
                        service.call(req)
                    })
                    .route(web::route().to(endpoints::session_request)),
            );
        if raw_websocket && self.endpoint.config.websocket {
            cfg.service(
                web::resource("/websocket")
                    .wrap_fn(|mut req, service| {
                        websocket::accept_draft_versions(&mut req);
                        service.call(req)
                    })
                    .route(web::get().to(websocket::raw_websocket)),
            );
        }
    }
}
