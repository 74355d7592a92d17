//! The chat demo: `cargo run --example chat`, then open http://127.0.0.1:4100/ in two
//! tabs.
//!
//! It mounts comet at `/comet` and registers the seed's example actions (`site/test`,
//! `site/publish`) beside the chat's own (`chat/nick`, `chat/who`, `chat/history`).

mod room;
mod site;

use actix::{Actor, AsyncContext};
use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use comet::Comet;

/// The chat demo server.
#[derive(Parser, Debug)]
#[command(about = "comet chat demo")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4100")]
    bind: String,
}

const PAGE: &str = include_str!("index.html");

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();

    // The room needs the node to publish, and the node needs the room's address to route
    // actions to it: make the room's context (and so its address) first, run it after.
    let room_context = actix::Context::<room::ChatRoom>::new();
    let room = room_context.address();
    let comet = Comet::builder()
        .action("site/test", site::SiteTest.start())
        .action_fn("site/publish", site::publish)
        .action("chat/nick", room.clone())
        .action("chat/who", room.clone())
        .action("chat/history", room)
        .build()
        .map_err(std::io::Error::other)?;
    room_context.run(room::ChatRoom::new(comet.node().clone()));

    let app_comet = comet.clone();
    let server = HttpServer::new(move || {
        App::new().service(app_comet.scope("/comet")).route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(PAGE)
            }),
        )
    })
    .bind(&args.bind)?
    .shutdown_timeout(5)
    .disable_signals();
    // The bound address, not the asked one: with `--bind 127.0.0.1:0` this line is how a
    // test learns the port.
    for addr in server.addrs() {
        log::info!("chat demo on http://{addr}/");
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        stop_requested().await;
        // Tell the clients first (close code 1001: reconnect), then stop serving: the
        // other way round, actix would hold their sockets until `shutdown_timeout` and
        // drop them without a word.
        comet.shutdown().await;
        handle.stop(true).await;
    });
    server.await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = actix_web::rt::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                return;
            }
            Err(err) => log::warn!("cannot listen for SIGTERM ({err}); Ctrl-C still works"),
        }
    }
    let _ = actix_web::rt::signal::ctrl_c().await;
}
