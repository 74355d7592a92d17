//! The chat demo: `cargo run --example chat`, then open http://127.0.0.1:4100/ in two
//! tabs.
//!
//! It mounts comet at `/comet` and registers the seed's example actions (`site/test`,
//! `site/publish`, `site/sleep`, from `comet::demo`) beside the chat's own (`chat/nick`,
//! `chat/who`, `chat/history`).
//!
//! It takes the same flags as `cometd` (`--redis`, `--role`, `--listen-actions`,
//! `--bind`, `--prefix`, `--config`, …; `--demo` is implied), so the demo itself runs as
//! a cluster; see `docs/CLUSTER.md`. The room's nicknames live in the process that runs
//! the room's actions (it hears of clients leaving any process through the `chat.left`
//! channel): in a cluster, give the chat actions one process (one `--role hub`, the
//! servers `--listen-actions false`).

mod room;

use actix::AsyncContext;
use actix_web::{web, HttpResponse};
use clap::{CommandFactory, Parser};
use comet::cli::Settings;

/// The chat demo server.
#[derive(Parser, Debug)]
#[command(name = "chat", about = "comet chat demo")]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

const PAGE: &str = include_str!("index.html");

/// A failure to start is one line on stderr (`chat: why`) and a non-zero exit.
fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = match Settings::from_args(Args::command()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("chat: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(run(settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    // Bind before any actor starts: a busy port or a bad address ends here.
    let listeners = settings.listen()?;

    // The room needs the node to publish, and the node needs the room's address to route
    // actions to it: make the room's context (and so its address) first, run it after.
    let room_context = actix::Context::<room::ChatRoom>::new();
    let room = room_context.address();
    let comet = comet::demo::register(settings.builder())
        .action("chat/nick", room.clone())
        .action("chat/who", room.clone())
        .action("chat/history", room)
        .build()?;
    room_context.run(room::ChatRoom::new(comet.node().clone()));

    let running = settings.start(listeners, comet, |config| {
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
    running.run().await?;
    Ok(())
}
