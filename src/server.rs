//! The two process roles of the seed, ready to run: [`Server`] holds client connections
//! over HTTP (and runs actions too when `listen_actions` is on), [`HubServer`] only runs
//! actions. Both run until SIGINT or SIGTERM and then shut down gracefully: the server
//! stops accepting connections, clients are told to reconnect elsewhere (close code 1001:
//! a WebSocket close frame, a SockJS `c[1001,…]` frame), no new action call is taken,
//! running ones may finish for up to `shutdown_timeout` and are otherwise put back on the
//! queue for another process (see [`Node::shutdown`](crate::Node::shutdown)).
//!
//! | role | holds connections | runs actions |
//! | --- | --- | --- |
//! | [`Server`], `listen_actions(false)` | yes | no |
//! | [`Server`], `listen_actions(true)` | yes | yes |
//! | [`HubServer`] | no | yes |
//!
//! Mounting [`Comet::scope`] into an app of your own is the `Server` role too; these
//! types are for processes that are only comet (the `cometd` binary, the chat demo).

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

use actix_web::{web, App, HttpServer};

use crate::{BuildError, Comet};

/// Extra services for the HTTP app (e.g. a page), beside comet's scope.
type Configure = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// jii's `Server`: an HTTP server with comet mounted at a path (default `/comet`).
///
/// ```no_run
/// use comet::{Comet, Listeners, Server};
///
/// #[actix_web::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // Bind first: a busy port fails here, before the node starts.
///     let listeners = Listeners::bind("127.0.0.1:4100")?;
///     let comet = Comet::builder()
///         .redis("redis://127.0.0.1:6379/")?
///         .listen_actions(false) // hold connections only; hub servers run the actions
///         .build()?;
///     let running = Server::new(comet).listen(listeners)?;
///     println!("listening on {:?}", running.addrs());
///     running.run().await?;
///     Ok(())
/// }
/// ```
pub struct Server {
    comet: Comet,
    path: String,
    configure: Option<Configure>,
    shutdown_timeout: u64,
}

impl Server {
    /// A server for `comet`, mounted at `/comet`.
    pub fn new(comet: Comet) -> Server {
        Server {
            comet,
            path: "/comet".into(),
            configure: None,
            shutdown_timeout: 5,
        }
    }

    /// Where comet is mounted (default `/comet`; the WebSocket is at `<path>/websocket`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Adds services of your own to the app (e.g. the page of a demo).
    pub fn configure<F>(mut self, configure: F) -> Self
    where
        F: Fn(&mut web::ServiceConfig) + Send + Sync + 'static,
    {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// Seconds the HTTP server waits for connections to end when stopping (default 5).
    pub fn shutdown_timeout(mut self, seconds: u64) -> Self {
        self.shutdown_timeout = seconds;
        self
    }

    /// Binds `addr` (`host:port`; port 0 picks a free one, see [`Running::addrs`]).
    /// Call it inside the actix system; [`Running::run`] then serves. A program that
    /// builds its comet for this server binds first with [`Listeners::bind`] and then
    /// calls [`listen`](Self::listen), so a busy port fails before any actor starts.
    pub fn bind(self, addr: &str) -> io::Result<Running> {
        self.listen(Listeners::bind(addr)?)
    }

    /// Serves on sockets bound beforehand. Call it inside the actix system;
    /// [`Running::run`] then serves.
    pub fn listen(self, listeners: Listeners) -> io::Result<Running> {
        if listeners.sockets.is_empty() {
            return Err(io::Error::other("a server needs an address to listen on"));
        }
        let Server {
            comet,
            path,
            configure,
            shutdown_timeout,
        } = self;
        let app_comet = comet.clone();
        let mut http = HttpServer::new(move || {
            let configure = configure.clone();
            App::new()
                .service(app_comet.scope(&path))
                .configure(move |config| {
                    if let Some(configure) = &configure {
                        configure(config);
                    }
                })
        })
        // The signals are ours: comet closes its clients first, then HTTP stops.
        .disable_signals()
        // SockJS: notice at once a client that closes a waiting poll or stream.
        .h1_allow_half_closed(false)
        // Each frame goes out when written: with Nagle's algorithm, a small frame
        // written while an earlier one is unacknowledged waits for the client's delayed
        // ACK (up to 40 ms); that was most of the latency at paced rates.
        .tcp_nodelay(true)
        .shutdown_timeout(shutdown_timeout);
        let addrs = listeners.addrs();
        for socket in listeners.sockets {
            http = http.listen(socket)?;
        }
        Ok(Running::new(comet, Some((addrs, http.run()))))
    }
}

/// The listening sockets of a [`Server`], bound before its comet is built: a busy port or
/// a bad address is then found before any of the node's actors starts. (An actor started
/// and never run, torn down with the runtime on the way out, runs its start-up in its
/// drop, with no runtime left: a panic instead of an error message.)
#[derive(Debug)]
pub struct Listeners {
    sockets: Vec<TcpListener>,
}

impl Listeners {
    /// How many connections may wait to be accepted; actix-web's default.
    const BACKLOG: i32 = 2048;

    /// Binds every address `addr` (`host:port`) resolves to, as actix-web does: address
    /// reuse on, a backlog of 2,048. Fails with `cannot listen on ADDR: why` when none
    /// can be bound.
    pub fn bind(addr: &str) -> io::Result<Listeners> {
        let context =
            |err: io::Error| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"));
        let mut sockets = Vec::new();
        let mut last_error = None;
        for resolved in addr.to_socket_addrs().map_err(context)? {
            match listen_on(resolved) {
                Ok(socket) => sockets.push(socket),
                Err(err) => last_error = Some(err),
            }
        }
        match (sockets.is_empty(), last_error) {
            (false, _) => Ok(Listeners { sockets }),
            (true, Some(err)) => Err(context(err)),
            (true, None) => Err(context(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolves to nothing",
            ))),
        }
    }

    /// No sockets: for a process that serves no HTTP (a hub server).
    pub fn none() -> Listeners {
        Listeners {
            sockets: Vec::new(),
        }
    }

    /// The sockets themselves, to serve on.
    pub(crate) fn into_sockets(self) -> Vec<TcpListener> {
        self.sockets
    }

    /// The bound addresses (port 0 resolved to the port taken).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|socket| socket.local_addr().ok())
            .collect()
    }
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(Listeners::BACKLOG)?;
    Ok(socket.into())
}

/// jii's `HubServer`: runs actions from the queue, holds no client connections, serves
/// no HTTP. Make one with
/// [`CometBuilder::build_hub_server`](crate::CometBuilder::build_hub_server).
pub struct HubServer {
    comet: Comet,
}

impl HubServer {
    /// A hub server of a built comet; it must have `listen_actions` on.
    pub fn new(comet: Comet) -> Result<HubServer, BuildError> {
        if !comet.config().listen_actions {
            return Err(BuildError::Invalid(
                "a hub server runs actions: listen_actions must be on".into(),
            ));
        }
        comet.set_role("hub");
        Ok(HubServer { comet })
    }

    /// The comet it runs: publish, send to connections (on other processes), and so on.
    pub fn comet(&self) -> &Comet {
        &self.comet
    }

    /// Runs until SIGINT or SIGTERM, then lets running actions finish.
    pub async fn run(self) -> io::Result<()> {
        self.into_running().run().await
    }

    /// The same as a [`Running`], for code that handles both roles alike.
    pub fn into_running(self) -> Running {
        Running::new(self.comet, None)
    }
}

/// A started process of either role, not yet waiting for its stop signal. It listens for
/// SIGINT and SIGTERM from the moment it is made, so a signal that comes before
/// [`run`](Self::run) (say, right after the process said it is ready) starts the graceful
/// shutdown there instead of killing the process outright.
pub struct Running {
    comet: Comet,
    http: Option<(Vec<SocketAddr>, actix_web::dev::Server)>,
    signals: Option<StopSignals>,
}

impl Running {
    fn new(comet: Comet, http: Option<(Vec<SocketAddr>, actix_web::dev::Server)>) -> Running {
        // Outside a runtime (no signal driver yet) they are made by `run`.
        let signals = tokio::runtime::Handle::try_current()
            .ok()
            .map(|_| StopSignals::listen());
        Running {
            comet,
            http,
            signals,
        }
    }

    /// The addresses the HTTP server is bound to (none for a hub server).
    pub fn addrs(&self) -> &[SocketAddr] {
        self.http
            .as_ref()
            .map_or(&[], |(addrs, _)| addrs.as_slice())
    }

    /// The comet it runs.
    pub fn comet(&self) -> &Comet {
        &self.comet
    }

    /// Serves until SIGINT or SIGTERM (or until the HTTP server fails), then shuts down
    /// gracefully: no new connection is accepted, clients are closed with 1001, running
    /// actions may finish for up to `shutdown_timeout` (or are put back on the queue),
    /// then HTTP stops. A second signal meanwhile stops at once: the calls still running
    /// then go back to the queue when this process's heartbeat expires.
    pub async fn run(self) -> io::Result<()> {
        let Running {
            comet,
            http,
            signals,
        } = self;
        let mut signals = signals.unwrap_or_else(StopSignals::listen);
        let Some((_, server)) = http else {
            signals.next().await;
            shut_down(&comet, &mut signals).await;
            return Ok(());
        };
        let handle = server.handle();
        let mut serving = actix_web::rt::spawn(server);
        let result = tokio::select! {
            () = signals.next() => {
                // Stop accepting first, so nobody connects to a process on its way out.
                handle.pause().await;
                let graceful = shut_down(&comet, &mut signals).await;
                handle.stop(graceful).await;
                (&mut serving).await
            }
            result = &mut serving => {
                comet.shutdown().await;
                result
            }
        };
        result.map_err(io::Error::other)?
    }
}

/// Shuts `comet` down gracefully, unless a second stop signal comes first; answers
/// whether it was graceful.
async fn shut_down(comet: &Comet, signals: &mut StopSignals) -> bool {
    tokio::select! {
        () = comet.shutdown() => true,
        () = signals.next() => {
            log::warn!(
                "second stop signal: stopping now; calls still running go back to the queue \
                 when this process's heartbeat expires"
            );
            false
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, heard from when this is made to when it is dropped: one
/// listener for the whole life of the process, so that no signal falls between two.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Starts listening; must run inside the runtime.
    fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(err) => {
                    log::warn!("cannot listen for {name} ({err}); it will not stop this process");
                    None
                }
            };
            StopSignals {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Resolves on the next SIGINT or SIGTERM (at once for one that came since the last).
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
                let heard = match signal {
                    Some(signal) => signal.recv().await.is_some(),
                    None => false,
                };
                if !heard {
                    // No listener, or the runtime is going away: this one never comes.
                    std::future::pending::<()>().await;
                }
            }
            tokio::select! {
                () = recv(&mut self.interrupt) => {}
                () = recv(&mut self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        log::info!("stop signal received: shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;

    #[test]
    fn a_hub_server_needs_actions_and_always_listens() {
        actix::System::new().block_on(async {
            assert!(Comet::builder().build_hub_server().is_err());
            let hub = Comet::builder()
                .listen_actions(false)
                .action_fn("a/b", |_: Action| async { Ok(serde_json::json!({})) })
                .build_hub_server()
                .unwrap();
            assert!(hub.comet().config().listen_actions);
            assert!(hub.into_running().addrs().is_empty());
            let edge = Comet::builder().listen_actions(false).build().unwrap();
            assert!(HubServer::new(edge).is_err());
        });
    }

    #[test]
    fn a_comet_torn_down_with_its_system_before_it_ran_does_not_panic() {
        // tokio swallows a panic in a task's drop, after the panic hook printed it: count
        // the panics of this thread (other tests' are on theirs) in a hook that passes
        // them on.
        thread_local! {
            static PANICS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|panics| panics.set(panics.get() + 1));
            previous(info);
        }));
        // As in a program whose bind fails after it built its comet: `?` leaves `main`,
        // and the runtime goes away with actors that never ran.
        let system = actix::System::new();
        let built = system.block_on(async {
            Comet::builder()
                .action_fn("a/b", |_: Action| async { Ok(serde_json::json!({})) })
                .build()
        });
        assert!(built.is_ok());
        drop(built);
        drop(system);
        assert_eq!(
            PANICS.with(std::cell::Cell::get),
            0,
            "a panic while tearing down"
        );
    }

    #[test]
    fn a_server_binds_a_free_port_and_says_which() {
        actix::System::new().block_on(async {
            let comet = Comet::builder().build().unwrap();
            let running = Server::new(comet).bind("127.0.0.1:0").unwrap();
            assert!(running.addrs().iter().all(|addr| addr.port() != 0));
            assert_eq!(running.addrs().len(), 1);
        });
    }
}
