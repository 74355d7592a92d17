//! The chat demo: `cargo run --example chat`, then open http://127.0.0.1:4100/ in two
//! tabs.
//!
//! It mounts comet at `/comet` and registers the seed's example actions (`site/test`,
//! `site/publish`, `site/sleep`, from `comet::demo`) beside the chat's own (`chat/nick`,
//! `chat/who`, `chat/history`).
//!
//! It takes the same flags as `cometd` (`--redis`, `--role`, `--listen-actions`,
//! `--bind`, `--prefix`, `--config`, …), so the demo itself runs as a cluster; see
//! `docs/CLUSTER.md`. The room's nicknames live in the process that runs the room's
//! actions (it hears of clients leaving any process through the `chat.left` channel):
//! in a cluster, give the chat actions one process (one `--role hub`, the
//! servers `--listen-actions false`).

mod room;

use actix::AsyncContext;
use actix_web::{web, HttpResponse};
use clap::Parser;
use comet::cli::Flags;

/// The chat demo server.
#[derive(Parser, Debug)]
#[command(about = "comet chat demo")]
struct Args {
    #[command(flatten)]
    flags: Flags,
}

const PAGE: &str = include_str!("index.html");

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = Args::parse()
        .flags
        .settings()
        .map_err(std::io::Error::other)?;

    // The room needs the node to publish, and the node needs the room's address to route
    // actions to it: make the room's context (and so its address) first, run it after.
    let room_context = actix::Context::<room::ChatRoom>::new();
    let room = room_context.address();
    let comet = comet::demo::register(settings.builder().map_err(std::io::Error::other)?)
        .action("chat/nick", room.clone())
        .action("chat/who", room.clone())
        .action("chat/history", room)
        .build()
        .map_err(std::io::Error::other)?;
    room_context.run(room::ChatRoom::new(comet.node().clone()));

    let running = settings.start(comet, |config| {
        config.route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(PAGE)
            }),
        );
    })?;
    for addr in running.addrs() {
        log::info!("chat demo on http://{addr}/");
    }
    log::info!("chat: {}", settings.describe());
    running.run().await
}
