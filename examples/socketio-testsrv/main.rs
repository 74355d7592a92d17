//! The Engine.IO and Socket.IO protocols' test server, for their official suites and for
//! comet's Socket.IO tests: `cargo run --example socketio-testsrv -- --bind 127.0.0.1:3000`.
//!
//! | path | what |
//! | --- | --- |
//! | `/engine.io/` | Engine.IO echo (the `engine.io-protocol` suite) |
//! | `/socket.io/` | the `socket.io-protocol` suite's app: namespaces `/` and `/custom`, `auth`, `message-back`, `message-with-ack` |
//! | `/comet/socket.io/` | comet itself over Socket.IO (with `/comet/websocket` and SockJS at `/comet`), with the actions `test/echo` and `test/publish`, a namespace `room` with presence and join/leave, and `feed` with history (100 for 5 min) and recovery (every other channel has neither) |
//!
//! Both suites use pings every 300 ms with a 200 ms timeout, `maxPayload` 1,000,000 and
//! a 1 s connect timeout; comet's endpoint uses comet's settings (`--heartbeat-ms`).

mod services;
#[path = "../sockjs-testsrv/services.rs"]
#[allow(dead_code)]
mod sockjs_services;

use std::time::Duration;

use actix_web::{App, HttpServer};
use clap::Parser;
use comet::auth::Namespace;
use comet::transport::socketio::SocketIo;
use comet::{Comet, Limits, SockJsConfig};

/// The Socket.IO protocol test server.
#[derive(Parser, Debug)]
#[command(about = "Engine.IO / Socket.IO protocol test services, and comet over Socket.IO")]
struct Args {
    /// Address to listen on (the suites expect 127.0.0.1:3000, as `localhost:3000`).
    #[arg(long, default_value = "127.0.0.1:3000")]
    bind: String,
    /// comet's heartbeat interval (Socket.IO's pingInterval) in ms.
    #[arg(long, default_value_t = 25_000)]
    heartbeat_ms: u64,
    /// A Redis URL to make several test servers one cluster.
    #[arg(long)]
    redis: Option<String>,
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let limits = Limits::default();
    let engine = SocketIo::new(
        services::suite_config(),
        limits.clone(),
        SockJsConfig::default(),
        services::engine_echo,
    );
    let socketio = SocketIo::new(
        services::suite_config(),
        limits,
        SockJsConfig::default(),
        services::socketio_echo,
    );
    let mut builder = sockjs_services::test_actions(Comet::builder());
    let mut config = comet::NodeConfig::default();
    config.heartbeat_interval = Duration::from_millis(args.heartbeat_ms);
    config.client_timeout = config.heartbeat_interval * 2 + Duration::from_secs(10);
    builder = builder
        .config(config)
        .namespace("room", Namespace::new().presence(true).join_leave(true))
        .namespace(
            "feed",
            Namespace::new()
                .history(100, Duration::from_secs(300))
                .recover(true),
        );
    if let Some(redis) = &args.redis {
        builder = builder
            .redis(redis.as_str())
            .map_err(std::io::Error::other)?;
    }
    let comet = builder.build().map_err(std::io::Error::other)?;
    let app_comet = comet.clone();
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| {
                engine.configure(cfg, "/engine.io");
                socketio.configure(cfg, "/socket.io");
            })
            .service(app_comet.scope("/comet"))
    })
    .h1_allow_half_closed(false)
    .tcp_nodelay(true)
    .bind(&args.bind)?;
    for addr in server.addrs() {
        // Scripts wait for this line to learn the port (e.g. with --bind 127.0.0.1:0).
        println!("socketio-testsrv listening on http://{addr}");
    }
    server.run().await?;
    comet.shutdown().await;
    Ok(())
}
