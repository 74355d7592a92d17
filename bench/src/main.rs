//! `comet-bench`: the load generator. It speaks jii's wire frames over raw WebSocket, so
//! it can be pointed at comet or at the original jii server alike.
//!
//! ```text
//! cargo run --release -p comet-bench -- fanout  --url ws://127.0.0.1:4100/comet/websocket --pid <server pid>
//! cargo run --release -p comet-bench -- idle    --url … --pid <server pid> --connections 10000
//! cargo run --release -p comet-bench -- actions --url … --pid <pid> [--pid <pid>…]
//! cargo run --release -p comet-bench -- cluster --url <A> --url <B> --pid <A> --pid <B> --reference-url … --reference-pid …
//! cargo run --release -p comet-bench -- connect --case none,<url>,<pid> --case hs256,<url>,<pid>,hmac:<secret> --case rs256,<url>,<pid>,key:<private.pem> --baseline
//! cargo run --release -p comet-bench -- history-fanout --case plain,<url>,<pid>,bench --case recover,<url>,<pid>,feed:bench,recover
//! cargo run --release -p comet-bench -- recover --case memory,<url>,<pid>,feed:bench --clients 1000 --missed 100
//! cargo run --release -p comet-bench -- presence --case listen,<url>,<pid>,room:bench,listen --members 10000 --rate 100
//! ```
//! `fanout --sign hmac:<secret>|key:<private.pem>` connects with tokens it signs itself
//! (`--token-in query|frame`), and `--reference-url`/`--reference-pid` measure a second
//! server (e.g. the same cometd without authentication) in the same invocation.
//! `--transport sockjs` (before or after the workload) talks to the same servers over
//! SockJS's WebSocket transport instead, `--transport socketio` over Socket.IO's
//! (`--url` stays the raw endpoint's; the bare baseline stays raw). Each run prints a summary table and one JSON line;
//! `docs/BENCHMARKS.md` has the figures and the commands that made them.

mod actions;
mod auth;
mod baseline;
mod connect;
mod fanout;
mod history;
mod idle;
mod net;
mod presence;
mod procstat;
mod progress;
mod recover;
mod redis_stats;
mod report;
mod sio;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::auth::{Signing, TokenIn, Verifying};
use crate::connect::CaseSpec;
use crate::net::{Target, Transport};

#[derive(Parser)]
#[command(about = "Load generator for comet (and any server speaking jii's frames)")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
    /// How to talk to the measured servers: jii's frames on the raw WebSocket endpoint
    /// given by `--url`, or SockJS's WebSocket transport beside it.
    #[arg(long, global = true, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
}

#[derive(Subcommand)]
enum Workload {
    /// N subscribers on one channel, one publisher; compared with the bare baseline.
    Fanout(FanoutArgs),
    /// N idle subscribed connections; server memory per connection.
    Idle(IdleArgs),
    /// Action round trips.
    Actions(ActionsArgs),
    /// Fan-out from a publisher on the first URL to subscribers spread over all URLs.
    Cluster(ClusterArgs),
    /// Connections per second (open, authenticate, subscribe until `subscribed`) and
    /// server CPU per connection, for several servers in one invocation.
    Connect(ConnectArgs),
    /// What signing and verifying one token costs (HS256, RS256, ES256), on one thread:
    /// the part of a connection's cost that is the token's.
    Tokens(TokensArgs),
    /// Fan-out to several servers and channels in one invocation, each subscriber with
    /// or without positions (`subscribe <channel> {"recover":true}`), with Redis's
    /// commands and CPU per publication; then the bare baseline.
    HistoryFanout(HistoryFanoutArgs),
    /// Clients subscribed with positions drop their connections, miss messages, and all
    /// reconnect with their positions: time until every one has recovered, and whether
    /// each got exactly what it missed.
    Recover(RecoverArgs),
    /// Presence under churn: members, listeners of join/leave, joins and leaves per
    /// second (issue 14).
    Presence(presence::PresenceArgs),
    /// Runs the bare WebSocket broadcast server (used by `fanout`).
    #[command(hide = true)]
    BaselineServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
        /// Set `TCP_NODELAY` on accepted connections.
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
        nodelay: bool,
    },
}

#[derive(Args, Clone)]
struct FanoutKnobs {
    /// Subscriber connections.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Messages the publisher sends.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// `max`, `half` (max, then half the max message rate), or messages per second.
    #[arg(long, default_value = "max")]
    rate: String,
    /// Approximate payload size in bytes.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// Source addresses 127.0.0.1..=127.0.0.N to connect from.
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Seconds to wait for stragglers once deliveries stop.
    #[arg(long, default_value_t = 5)]
    grace_secs: u64,
    /// Extra subscribers that subscribe and then never read (backpressure: the server's
    /// RSS before and after shows what they cost; the others must still get everything).
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Whether the server answers `subscribe` with `subscribed <channel>`: comet does,
    /// the original jii does not (with `false`, warm-up messages show when every
    /// subscriber is subscribed).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    subscribe_ack: bool,
    /// The channel (e.g. `room:bench`, in namespace `room`); with `--channels N` above 1,
    /// the stem of N channels `<channel>-0` … `<channel>-N-1`.
    #[arg(long, default_value = "bench")]
    channel: String,
    /// Channels the subscribers are spread over (subscriber `i` on channel `i mod N`);
    /// message `s` goes to channel `s mod N` only, so each subscriber gets its channel's
    /// share of the messages.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// The publisher subscribes to the channel first and counts as one of the subscribers
    /// (needed where a namespace has `publish = "subscribers"`); the bare baseline's
    /// publisher stays apart.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    publisher_subscribes: bool,
}

#[derive(Args)]
struct FanoutArgs {
    /// The server's raw WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:4100/comet/websocket")]
    url: String,
    /// The server's pid, to measure its CPU and memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Skip the bare baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Whether the bare baseline sets `TCP_NODELAY` on its connections, as comet does.
    /// Off by default (actix-web's default, and the baseline of the earlier figures): then
    /// Nagle's algorithm may join its small paced writes, which saves it CPU and costs it
    /// latency.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    baseline_nodelay: bool,
    /// What the server is called in the table and the JSON line (e.g. `jii`).
    #[arg(long, default_value = "comet")]
    label: String,
    /// Connect to `--url` with tokens signed here: `hmac:SECRET` (HS256) or
    /// `key:PRIVATE_KEY.pem` (RS256 or ES256), one user per connection.
    #[arg(long)]
    sign: Option<Signing>,
    /// Where the tokens go: the `?token=` query parameter or an `auth` first frame.
    #[arg(long, value_enum, default_value_t = TokenIn::Frame)]
    token_in: TokenIn,
    /// Another server measured first, in the same invocation and without tokens (e.g.
    /// the same cometd without authentication or namespaces).
    #[arg(long)]
    reference_url: Option<String>,
    #[arg(long)]
    reference_pid: Option<u32>,
    /// What the reference server is called in the table.
    #[arg(long, default_value = "reference")]
    reference_label: String,
    #[command(flatten)]
    knobs: FanoutKnobs,
}

#[derive(Args)]
struct HistoryFanoutArgs {
    /// `LABEL,URL,PID,CHANNEL[,recover][,redis]` (repeat): a server and channel, its
    /// subscribers with positions (`recover`), its hub the `--redis` (`redis`). The first
    /// is the one the others are compared with.
    #[arg(long = "case", required = true)]
    cases: Vec<history::CaseSpec>,
    /// Redis's `host:port`: commands and CPU per publication (`INFO`) of the `redis` cases.
    #[arg(long)]
    redis: Option<String>,
    /// Redis's pid: its CPU per publication from the scheduler's count.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// Skip the bare baseline.
    #[arg(long)]
    no_baseline: bool,
    #[command(flatten)]
    knobs: FanoutKnobs,
}

#[derive(Args)]
struct RecoverArgs {
    /// `LABEL,URL,PID,CHANNEL[,redis]` (repeat): a server and a channel of a namespace
    /// with history and `recover`; `redis`: its hub is the `--redis`.
    #[arg(long = "case", required = true)]
    cases: Vec<history::CaseSpec>,
    /// Clients that drop and recover.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Messages each misses.
    #[arg(long, default_value_t = 100)]
    missed: usize,
    /// Reconnections in progress at once (default: all of them).
    #[arg(long)]
    parallel: Option<usize>,
    /// Approximate payload size in bytes.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// A channel without history: the same clients first reconnect to it without
    /// recovery, in the same invocation (the reconnect storm's own cost).
    #[arg(long)]
    plain_channel: Option<String>,
    /// Source addresses 127.0.0.1..=127.0.0.N to connect from.
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Redis's `host:port`: commands and CPU per recovering client (`INFO`).
    #[arg(long)]
    redis: Option<String>,
    /// Redis's pid: its CPU per client from the scheduler's count.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// One client subscribes alone before the others (on Redis, the first history read
    /// loads the script; `false` lets the subscribing storm do it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    warm_up: bool,
}

#[derive(Args)]
struct TokensArgs {
    /// A name for each pair (repeat, in the order of `--sign` and `--verify`).
    #[arg(long, required = true)]
    label: Vec<String>,
    /// How tokens are signed: `hmac:SECRET` or `key:PRIVATE_KEY.pem` (repeat).
    #[arg(long, required = true)]
    sign: Vec<Signing>,
    /// How the server verifies them: `hmac:SECRET` or `key:PUBLIC_KEY.pem` (repeat).
    #[arg(long, required = true)]
    verify: Vec<Verifying>,
    /// Tokens signed and verified per pair.
    #[arg(long, default_value_t = 2000)]
    tokens: usize,
}

#[derive(Args)]
struct ConnectArgs {
    /// A server to measure: `LABEL,URL,PID` (no token) or `LABEL,URL,PID,hmac:SECRET` /
    /// `LABEL,URL,PID,key:PRIVATE_KEY.pem` (tokens signed here). Repeat; the first is the
    /// one the others are compared with.
    #[arg(long = "case", required = true)]
    cases: Vec<CaseSpec>,
    /// Where the tokens go, each measured in turn: `query`, `frame` or both.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "query,frame")]
    token_in: Vec<TokenIn>,
    /// Connections per case.
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    /// Connections in progress at once.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
    /// Distinct tokens (users) signed per case, taken round-robin.
    #[arg(long, default_value_t = 1000)]
    tokens: usize,
    /// The channel each connection subscribes to.
    #[arg(long, default_value = "bench")]
    channel: String,
    /// Source addresses 127.0.0.1..=127.0.0.N to connect from.
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Seconds to let a server close the connections before the next case.
    #[arg(long, default_value_t = 2)]
    settle_secs: u64,
    /// Connections of the unmeasured pass each server gets before its first case
    /// (default: as many as `--connections`, so that every measured pass finds the
    /// server's memory for that many connections already mapped: a server's first 10,000
    /// connections cost it more than later ones, most likely page faults).
    #[arg(long)]
    warmup: Option<usize>,
    /// Measure the bare baseline server too (handshake only: it answers nothing).
    #[arg(long)]
    baseline: bool,
}

#[derive(Args)]
struct IdleArgs {
    #[arg(long, default_value = "ws://127.0.0.1:4100/comet/websocket")]
    url: String,
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Spread the subscriptions over this many channels.
    #[arg(long, default_value_t = 100)]
    channels: usize,
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Seconds to let the server settle before measuring.
    #[arg(long, default_value_t = 2)]
    settle_secs: u64,
    /// Measure the bare baseline server (no protocol, no subscriptions) too: the stack's
    /// own cost per connection.
    #[arg(long)]
    baseline: bool,
}

#[derive(Args)]
struct ActionsArgs {
    /// Endpoints to call through (repeat for several processes).
    #[arg(long, default_value = "ws://127.0.0.1:4100/comet/websocket")]
    url: Vec<String>,
    /// Processes whose CPU to count (repeat).
    #[arg(long)]
    pid: Vec<u32>,
    /// The route called; with `--routes N` above 1, the stem of N routes `<route>0` …
    /// `<route>N-1` (e.g. `--route bench/echo --routes 30`: `cometd` registers those
    /// with `COMET_BENCH_ROUTES=30`).
    #[arg(long, default_value = "site/test")]
    route: String,
    /// How many routes the calls are spread over, evenly (see `--route`).
    #[arg(long, default_value_t = 1)]
    routes: usize,
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Calls outstanding per connection.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    #[arg(long, default_value_t = 100_000)]
    calls: usize,
    /// Redis's pid: its CPU per call is reported apart.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// Redis's `host:port`: commands, script calls and read/write events per call, from
    /// its INFO counters.
    #[arg(long)]
    redis: Option<String>,
    /// A Redis node's `host:port` (repeat for every master of a Redis Cluster): its CPU
    /// and commands per call from its INFO, and the busiest node's and the sum.
    #[arg(long = "redis-node")]
    redis_nodes: Vec<String>,
}

#[derive(Args)]
struct ClusterArgs {
    /// Endpoints of the cluster's processes (repeat); the publisher uses the first.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// Processes whose CPU to count (repeat).
    #[arg(long)]
    pid: Vec<u32>,
    /// A single in-memory process to compare with, run in the same invocation.
    #[arg(long)]
    reference_url: Option<String>,
    #[arg(long)]
    reference_pid: Option<u32>,
    /// A Redis node's `host:port` (repeat for every master of a Redis Cluster): its CPU
    /// and commands per message from its INFO, and the busiest node's and the sum.
    #[arg(long = "redis-node")]
    redis_nodes: Vec<String>,
    /// What the cluster's runs are called in the table (e.g. `one redis`).
    #[arg(long, default_value = "cluster")]
    label: String,
    #[command(flatten)]
    knobs: FanoutKnobs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Workload::BaselineServer { bind, nodelay } = &cli.workload {
        return match baseline::serve(bind, *nodelay) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("baseline server: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.workload, cli.transport)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(workload: Workload, transport: Transport) -> Result<(), String> {
    match workload {
        Workload::Fanout(args) => fanout_workload(args, transport).await,
        Workload::Idle(args) => {
            let target = Target::new(&args.url, args.sources)
                .await?
                .over(transport)?;
            let outcome = idle::run(
                &target,
                args.pid,
                args.connections,
                args.channels,
                Duration::from_secs(args.settle_secs),
            )
            .await?;
            println!(
                "\nidle: {} connections on {} channels: server RSS {:.1} → {:.1} MiB, {:.2} KiB per connection",
                outcome.connections,
                outcome.channels,
                outcome.rss_before_mib,
                outcome.rss_after_mib,
                outcome.kib_per_connection
            );
            let mut runs = vec![outcome];
            if args.baseline {
                let server = baseline::spawn(false)?;
                let target = Target::new(&format!("ws://{}/ws", server.addr), args.sources).await?;
                let bare = idle::run(
                    &target,
                    server.pid(),
                    args.connections,
                    0,
                    Duration::from_secs(args.settle_secs),
                )
                .await?;
                println!(
                    "idle baseline (bare actix-ws, no subscriptions): server RSS {:.1} → {:.1} MiB, {:.2} KiB per connection",
                    bare.rss_before_mib, bare.rss_after_mib, bare.kib_per_connection
                );
                runs.push(bare);
            }
            report::print_json("idle", json!({ "runs": runs }));
            Ok(())
        }
        Workload::Actions(args) => {
            let mut targets = Vec::new();
            for url in &args.url {
                targets.push(Target::new(url, 1).await?.over(transport)?);
            }
            let routes = match args.routes {
                0 | 1 => vec![args.route],
                n => (0..n).map(|i| format!("{}{i}", args.route)).collect(),
            };
            let outcome = actions::run(&actions::Plan {
                targets,
                routes,
                connections: args.connections,
                in_flight: args.in_flight,
                calls: args.calls,
                pids: args.pid,
                redis_pid: args.redis_pid,
                redis_addr: args.redis,
                redis_nodes: args.redis_nodes,
            })
            .await?;
            println!(
                "\nactions `{}`: {} calls over {}×{} in flight: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors, cpu {} µs/call",
                outcome.route,
                outcome.calls,
                outcome.connections,
                outcome.in_flight,
                outcome.calls_per_s,
                outcome.p50_us as f64 / 1000.0,
                outcome.p99_us as f64 / 1000.0,
                outcome.max_us as f64 / 1000.0,
                outcome.errors,
                outcome.cpu_us_per_call.map_or("-".into(), |c| format!("{c:.2}")),
            );
            if outcome.cpu_us_per_call_by_pid.len() > 1 {
                let each: Vec<String> = outcome
                    .cpu_us_per_call_by_pid
                    .iter()
                    .map(|(pid, cpu)| format!("{pid}: {cpu:.2}"))
                    .collect();
                println!("  cpu µs/call by process: {}", each.join(", "));
            }
            if let Some(cpu) = outcome.redis_cpu_us_per_call {
                println!("  redis cpu {cpu:.2} µs/call");
            }
            if let Some(nodes) = &outcome.redis_nodes {
                nodes.print("call");
            }
            if let Some(redis) = &outcome.redis_per_call {
                println!(
                    "  redis per call: {:.2} commands (incl. inside scripts), {:.3} script calls, \
                     {:.2} publishes, {:.3} reads, {:.3} writes",
                    redis.commands, redis.scripts, redis.publishes, redis.reads, redis.writes
                );
            }
            report::print_json("actions", json!({ "result": outcome }));
            Ok(())
        }
        Workload::Cluster(args) => cluster_workload(args, transport).await,
        Workload::Connect(args) => connect_workload(args, transport).await,
        Workload::HistoryFanout(args) => history_fanout_workload(args, transport).await,
        Workload::Recover(args) => recover_workload(args, transport).await,
        Workload::Presence(args) => presence::workload(args, transport).await,
        Workload::Tokens(args) => {
            if args.sign.len() != args.label.len() || args.verify.len() != args.label.len() {
                return Err("give as many --label as --sign and --verify".into());
            }
            println!(
                "\n{:<10} {:>9} {:>7} {:>10} {:>12}",
                "pair", "algorithm", "tokens", "sign µs", "verify µs"
            );
            let mut costs = Vec::new();
            for ((label, signing), verifying) in args.label.iter().zip(&args.sign).zip(&args.verify)
            {
                let cost = auth::token_cost(label, signing, verifying, args.tokens)?;
                println!(
                    "{:<10} {:>9} {:>7} {:>10.2} {:>12.2}",
                    cost.label, cost.algorithm, cost.tokens, cost.sign_us, cost.verify_us
                );
                costs.push(cost);
            }
            report::print_json("tokens", json!({ "runs": costs }));
            Ok(())
        }
        Workload::BaselineServer { .. } => Ok(()),
    }
}

/// What a fan-out pass needs beyond its targets: the subscribe options (positions) and
/// the Redis to read.
#[derive(Default)]
struct PassExtras {
    /// The channel, instead of `--channel`.
    channel: Option<String>,
    /// `subscribe <channel> <options>` (e.g. `{"recover":true}`).
    options: Option<String>,
    /// Redis's `host:port`, for its counters.
    redis_addr: Option<String>,
    /// Redis's pid, for its CPU.
    redis_pid: Option<u32>,
    /// Every Redis node (`host:port`) whose counters to read, node by node.
    redis_nodes: Vec<String>,
}

/// The plans for one target at the rates `knobs` asks for, measured in order.
async fn fanout_passes(
    label: &str,
    publisher: Target,
    subscribers: Vec<Target>,
    subscribe: bool,
    pids: Vec<u32>,
    knobs: &FanoutKnobs,
) -> Result<Vec<fanout::Outcome>, String> {
    fanout_passes_with(
        label,
        publisher,
        subscribers,
        subscribe,
        pids,
        knobs,
        PassExtras::default(),
    )
    .await
}

/// [`fanout_passes`] with positions or Redis readings.
async fn fanout_passes_with(
    label: &str,
    publisher: Target,
    subscribers: Vec<Target>,
    subscribe: bool,
    pids: Vec<u32>,
    knobs: &FanoutKnobs,
    extras: PassExtras,
) -> Result<Vec<fanout::Outcome>, String> {
    let mut plan = fanout::Plan {
        label: format!("{label} max"),
        publisher,
        subscribers,
        count: knobs.subscribers,
        stalled: if subscribe { knobs.stalled } else { 0 },
        messages: knobs.messages,
        rate: None,
        payload_bytes: knobs.payload_bytes,
        channel: extras.channel.unwrap_or_else(|| knobs.channel.clone()),
        channels: knobs.channels.max(1),
        subscribe,
        acked: knobs.subscribe_ack,
        publisher_subscribes: knobs.publisher_subscribes,
        pids,
        grace: Duration::from_secs(knobs.grace_secs),
        options: extras.options,
        redis_addr: extras.redis_addr,
        redis_pid: extras.redis_pid,
        redis_nodes: extras.redis_nodes,
    };
    match knobs.rate.as_str() {
        "max" => Ok(vec![fanout::run(&plan).await?]),
        "half" => {
            let max = fanout::run(&plan).await?;
            plan.label = format!("{label} half");
            plan.rate = Some(max.deliveries_per_s / knobs.subscribers.max(1) as f64 / 2.0);
            let half = fanout::run(&plan).await?;
            Ok(vec![max, half])
        }
        fixed => {
            let rate: f64 = fixed
                .parse()
                .map_err(|_| format!("--rate is max, half or a number, not `{fixed}`"))?;
            plan.label = format!("{label} {rate}/s");
            plan.rate = Some(rate);
            Ok(vec![fanout::run(&plan).await?])
        }
    }
}

async fn fanout_workload(args: FanoutArgs, transport: Transport) -> Result<(), String> {
    let knobs = &args.knobs;
    let mut outcomes = Vec::new();
    if let Some(url) = &args.reference_url {
        let target = Target::new(url, knobs.sources).await?.over(transport)?;
        outcomes.extend(
            fanout_passes(
                &args.reference_label,
                target.clone(),
                vec![target],
                true,
                args.reference_pid.into_iter().collect(),
                knobs,
            )
            .await?,
        );
    }
    let references = outcomes.len();
    // One user per connection: the subscribers, the stalled ones, the publisher.
    let credentials = match &args.sign {
        Some(signing) => {
            Some(signing.credentials(knobs.subscribers + knobs.stalled + 1, args.token_in)?)
        }
        None => None,
    };
    let target = Target::new(&args.url, knobs.sources)
        .await?
        .over(transport)?
        .with_credentials(credentials);
    outcomes.extend(
        fanout_passes(
            &args.label,
            target.clone(),
            vec![target],
            true,
            args.pid.into_iter().collect(),
            knobs,
        )
        .await?,
    );
    let compared: Vec<_> = outcomes[..references]
        .iter()
        .cloned()
        .zip(outcomes[references..].iter().cloned())
        .collect();
    let mut baseline_max = None;
    if !args.no_baseline {
        let server = baseline::spawn(args.baseline_nodelay)?;
        let url = format!("ws://{}/ws", server.addr);
        let publisher = Target::new(&format!("{url}?publisher"), 1).await?;
        let subscribers = Target::new(&url, knobs.sources).await?;
        let base = fanout_passes(
            "baseline",
            publisher,
            vec![subscribers],
            false,
            vec![server.pid()],
            knobs,
        )
        .await?;
        baseline_max = base.first().cloned();
        outcomes.extend(base);
    }
    report::print_fanout(&outcomes, baseline_max.as_ref());
    report::print_against(&compared);
    for outcome in outcomes.iter().filter(|o| o.stalled > 0) {
        println!(
            "{}: {} stalled subscribers; server RSS {:.1} MiB before the messages, {:.1} MiB after",
            outcome.label,
            outcome.stalled,
            outcome.rss_before_mib.unwrap_or(0.0),
            outcome.rss_mib.unwrap_or(0.0),
        );
    }
    report::print_json("fanout", json!({ "runs": outcomes }));
    Ok(())
}

async fn history_fanout_workload(
    args: HistoryFanoutArgs,
    transport: Transport,
) -> Result<(), String> {
    let knobs = &args.knobs;
    let mut outcomes = Vec::new();
    for case in &args.cases {
        let target = Target::new(&case.url, knobs.sources)
            .await?
            .over(transport)?;
        let extras = PassExtras {
            channel: Some(case.channel.clone()),
            options: case.recover.then(|| r#"{"recover":true}"#.to_owned()),
            redis_addr: args.redis.clone().filter(|_| case.redis),
            redis_pid: args.redis_pid.filter(|_| case.redis),
            ..PassExtras::default()
        };
        outcomes.extend(
            fanout_passes_with(
                &case.label,
                target.clone(),
                vec![target],
                true,
                vec![case.pid],
                knobs,
                extras,
            )
            .await?,
        );
    }
    let mut baseline_max = None;
    if !args.no_baseline {
        let server = baseline::spawn(false)?;
        let url = format!("ws://{}/ws", server.addr);
        let publisher = Target::new(&format!("{url}?publisher"), 1).await?;
        let subscribers = Target::new(&url, knobs.sources).await?;
        let base = fanout_passes(
            "baseline",
            publisher,
            vec![subscribers],
            false,
            vec![server.pid()],
            knobs,
        )
        .await?;
        baseline_max = base.first().cloned();
        outcomes.extend(base);
    }
    report::print_fanout(&outcomes, baseline_max.as_ref());
    history::print_fanout(&outcomes);
    report::print_json("history-fanout", json!({ "runs": outcomes }));
    Ok(())
}

async fn recover_workload(args: RecoverArgs, transport: Transport) -> Result<(), String> {
    let mut outcomes = Vec::new();
    for case in &args.cases {
        let target = Target::new(&case.url, args.sources)
            .await?
            .over(transport)?;
        let plan = recover::Plan {
            label: case.label.clone(),
            target,
            pid: Some(case.pid),
            channel: case.channel.clone(),
            plain_channel: args.plain_channel.clone(),
            clients: args.clients,
            missed: args.missed,
            parallel: args.parallel.unwrap_or(args.clients),
            payload_bytes: args.payload_bytes,
            redis_addr: args.redis.clone().filter(|_| case.redis),
            redis_pid: args.redis_pid.filter(|_| case.redis),
            warm_up: args.warm_up,
        };
        outcomes.push(recover::run(&plan).await?);
    }
    recover::print(&outcomes);
    report::print_json("recover", json!({ "runs": outcomes }));
    Ok(())
}

async fn connect_workload(args: ConnectArgs, transport: Transport) -> Result<(), String> {
    let mut specs = Vec::new();
    for spec in args.cases {
        let target = Target::new(&spec.url, args.sources)
            .await?
            .over(transport)?;
        specs.push((spec, target));
    }
    // Every token is signed before anything is measured.
    let mut cases = connect::cases(&specs, &args.token_in, args.tokens)?;
    let mut baseline = None;
    if args.baseline {
        let server = baseline::spawn(false)?;
        let target = Target::new(&format!("ws://{}/ws", server.addr), args.sources).await?;
        cases.push(connect::Case {
            label: "baseline (handshake)".into(),
            target,
            pid: server.pid(),
            subscribe: false,
        });
        baseline = Some(server);
    }
    let settle = Duration::from_secs(args.settle_secs);
    let mut outcomes = Vec::new();
    let mut warmed = Vec::new();
    let warmup = args.warmup.unwrap_or(args.connections);
    for case in &cases {
        // Not the bare baseline: it keeps a closed connection's writer (and socket) until
        // a broadcast fails, so a warm-up would only double its open files.
        if warmup > 0 && case.subscribe && !warmed.contains(&case.pid) {
            warmed.push(case.pid);
            connect::run(case, warmup, args.parallel, &args.channel, settle).await?;
        }
        outcomes.push(
            connect::run(case, args.connections, args.parallel, &args.channel, settle).await?,
        );
    }
    drop(baseline);
    connect::print(&outcomes);
    report::print_json("connect", json!({ "runs": outcomes }));
    Ok(())
}

async fn cluster_workload(args: ClusterArgs, transport: Transport) -> Result<(), String> {
    let knobs = &args.knobs;
    let mut outcomes = Vec::new();
    let mut reference = None;
    if let Some(url) = &args.reference_url {
        let target = Target::new(url, knobs.sources).await?.over(transport)?;
        let single = fanout_passes(
            "single process",
            target.clone(),
            vec![target],
            true,
            args.reference_pid.into_iter().collect(),
            knobs,
        )
        .await?;
        reference = single.first().cloned();
        outcomes.extend(single);
    }
    let mut targets = Vec::new();
    for url in &args.url {
        targets.push(Target::new(url, knobs.sources).await?.over(transport)?);
    }
    let publisher = targets[0].clone();
    let extras = PassExtras {
        redis_nodes: args.redis_nodes,
        ..PassExtras::default()
    };
    outcomes.extend(
        fanout_passes_with(
            &args.label,
            publisher,
            targets,
            true,
            args.pid,
            knobs,
            extras,
        )
        .await?,
    );
    report::print_fanout(&outcomes, reference.as_ref());
    for outcome in &outcomes {
        if let Some(nodes) = &outcome.redis_nodes {
            println!("{}:", outcome.label);
            nodes.print("message");
        }
    }
    report::print_json("cluster", json!({ "runs": outcomes }));
    Ok(())
}
