//! The Socket.IO transport: Engine.IO v4 (long-polling, WebSocket, the upgrade from one
//! to the other, heartbeats) carrying Socket.IO v5 packets, so that the stock
//! `socket.io-client` talks to comet (`io(url, { path: "<prefix>/socket.io" })`) beside
//! jii and SockJS clients, in the same channels. The mapping of comet's model onto
//! Socket.IO events is in `comet.rs` and docs/PROTOCOL.md ("Socket.IO").
//!
//! Engine.IO's WebSocket is one more framing on the one WebSocket engine
//! (`transport/socket.rs`); its long-polling sessions are actors draining the same
//! [`Outlet`](comet_actors::Outlet) between requests, as SockJS's are. An [`EioService`]
//! opens the application behind each session ([`EioApp`]): comet's connection
//! ([`CometSocketIo`]), or anything else (the protocol test server's echo apps).
//!
//! | file | what it holds |
//! | --- | --- |
//! | `mod.rs` | [`SocketIo`]: an endpoint, its route |
//! | `cache.rs` | a fan-out's delivery translated and framed once per thread |
//! | `app.rs` | [`EioApp`], [`EioService`], [`EioConfig`] |
//! | `eio.rs` | Engine.IO packets and payloads |
//! | `packet.rs` | Socket.IO packets |
//! | `endpoints.rs` | the HTTP requests: handshake, poll, post, WebSocket, upgrade |
//! | `framing.rs` | the WebSocket framings on the engine, and a WebSocket session's watchdog |
//! | `session.rs` | the long-polling session actor, and the registry of sessions |
//! | `requests.rs` | what it is told: polls, posts, the upgrading socket's news |
//! | `upgrade.rs` | the WebSocket that upgrades a long-polling session |
//! | `comet.rs`, `comet/outbound.rs` | comet's model in Socket.IO's words: events in, jii frames out |

mod app;
mod cache;
mod comet;
#[cfg(test)]
mod comet_tests;
pub mod eio;
mod endpoints;
mod framing;
pub mod packet;
mod requests;
mod session;
mod upgrade;

use std::sync::Arc;

use actix_web::web;
use comet_actors::Limits;

pub use app::{spawn_heartbeats, EioApp, EioConfig, EioService};
pub use comet::CometSocketIo;
pub use eio::EioMessage;

use crate::transport::sockjs::SockJsConfig;
use session::Sessions;

/// What the handlers of one endpoint share.
pub(crate) struct Endpoint {
    pub(crate) config: Arc<EioConfig>,
    pub(crate) limits: Limits,
    /// Its `origins` decide which browser origins may connect (one list for every
    /// transport of comet).
    pub(crate) origins: Arc<SockJsConfig>,
    pub(crate) service: Arc<dyn EioService>,
    pub(crate) sessions: Sessions,
}

/// An Engine.IO / Socket.IO endpoint: its options, its application, its long-polling
/// sessions. Cheap to clone; clone it into your `HttpServer` factory so that every
/// worker shares the sessions.
#[derive(Clone)]
pub struct SocketIo {
    endpoint: Arc<Endpoint>,
}

impl SocketIo {
    /// An endpoint serving `service`, each client bounded by `limits` (outbound queue,
    /// slow-consumer policy, the largest WebSocket message: `Limits::transport_cap`),
    /// browsers allowed by `origins.origins`.
    pub fn new(
        config: EioConfig,
        limits: Limits,
        origins: SockJsConfig,
        service: impl EioService,
    ) -> SocketIo {
        SocketIo {
            endpoint: Arc::new(Endpoint {
                config: Arc::new(config),
                limits,
                origins: Arc::new(origins),
                service: Arc::new(service),
                sessions: Sessions::default(),
            }),
        }
    }

    /// The endpoint's options.
    pub fn config(&self) -> &EioConfig {
        &self.endpoint.config
    }

    /// How many long-polling sessions (upgraded ones included) are open.
    pub fn session_count(&self) -> usize {
        self.endpoint.sessions.len()
    }

    /// Serves the endpoint at `path` (e.g. `/socket.io`, with and without the trailing
    /// slash the clients add) in `cfg`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig, path: &str) {
        let path = path.trim_end_matches('/');
        cfg.service(
            web::resource([path.to_owned(), format!("{path}/")])
                .app_data(web::Data::from(self.endpoint.clone()))
                .route(web::route().to(endpoints::engine_io)),
        );
    }
}
