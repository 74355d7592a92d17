//! `cometd`: a comet process, in any of the seed's roles.
//!
//! ```text
//! cometd                                   # one process, in-memory hub and queue, :4100
//! cometd --demo                            # the same, with site/test, site/publish, site/sleep
//! cometd --redis redis://127.0.0.1:6379/ --listen-actions false   # holds connections
//! cometd --redis redis://127.0.0.1:6379/ --role hub --demo         # only runs actions
//! cometd --redis-cluster redis://10.0.0.1:7000/,redis://10.0.0.2:7000/  # on a Redis Cluster
//! ```
//!
//! Settings come from flags, `COMET_*` environment variables or a TOML file
//! (`--config`); see `cometd --help` and the `comet::cli` module. Logs go to stderr
//! (`RUST_LOG` filters them, default `info`). Two lines go to stdout, for scripts and
//! tests: `cometd listening on http://ADDR/PATH` (role `server`) and then
//! `cometd ready: node ID, …` once the node is started.
//!
//! For the benchmarks (`bench/run-cluster.sh redis-cluster`), `COMET_BENCH_ROUTES=N` in the
//! environment registers N more echo routes, `bench/echo0` … `bench/echoN-1` (each like
//! `site/test`), so that calls can be spread over many routes; unset, nothing changes.
//!
//! A failure to start (bad settings, an unreadable config file, a busy port, a bad
//! address) is one line on stderr, `cometd: why`, and exit status 2 for settings, 1 for
//! the rest.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use comet::cli::Settings;
use comet::demo;

/// A comet server process: holds client connections (role `server`) or only runs actions
/// (role `hub`); several processes on one Redis act as one.
#[derive(Parser, Debug)]
#[command(name = "cometd", version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = match Settings::from_args(Cli::command()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("cometd: {err}");
            return ExitCode::from(2);
        }
    };
    let system = actix_web::rt::System::new();
    match system.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cometd: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `COMET_BENCH_ROUTES`: how many `bench/echo<i>` routes to register, if set.
fn bench_routes() -> Result<Option<usize>, String> {
    match std::env::var("COMET_BENCH_ROUTES") {
        Ok(routes) => routes
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("COMET_BENCH_ROUTES is a number of routes, not `{routes}`")),
        Err(_) => Ok(None),
    }
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    // Bind before anything starts: a busy port or a bad address ends here, with no actor
    // to tear down.
    let listeners = settings.listen()?;
    settings.check_redis().await?;
    let mut builder = settings.builder();
    if settings.demo {
        builder = demo::register(builder);
    }
    if let Some(routes) = bench_routes()? {
        builder = demo::register_bench_routes(builder, routes);
    }
    let comet = builder.build()?;
    let running = settings.start(listeners, comet.clone(), |_| {})?;
    for addr in running.addrs() {
        println!("cometd listening on http://{addr}{}", settings.path);
    }
    comet.ready().await;
    println!(
        "cometd ready: node {}, {}, routes {:?}",
        comet.id(),
        settings.describe(),
        comet.routes()
    );
    log::info!(
        "cometd: node {} ready ({})",
        comet.id(),
        settings.describe()
    );
    running.run().await?;
    Ok(())
}
