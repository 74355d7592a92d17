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
//! endpoints run their own `SockJsService`s instead of comet's connections. The services
//! are in `services.rs`, which the SockJS integration tests include too.
//! `docs/SOCKJS.md` tells how to point the sockjs-protocol suite at it;
//! `tests/sockjs-node/` drives `sockjs-client` against `/comet` and `/echo`.

mod services;

use actix_web::{App, HttpServer};
use clap::Parser;
use comet::transport::sockjs::SockJs;
use comet::Comet;

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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let base = services::base(args.sockjs_url.as_deref());
    let endpoints = services::protocol_endpoints(base.clone()).map_err(std::io::Error::other)?;
    let comet = services::test_actions(Comet::builder().sockjs(base))
        .build()
        .map_err(std::io::Error::other)?;
    let app_comet = comet.clone();

    let server = HttpServer::new(move || {
        let app = App::new().service(app_comet.scope("/comet"));
        endpoints
            .iter()
            .fold(app, |app, (prefix, endpoint): &(&str, SockJs)| {
                app.service(endpoint.scope(prefix))
            })
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
