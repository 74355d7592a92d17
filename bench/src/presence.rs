//! Presence under churn (issue 14): MEMBERS connections subscribed to one channel, the
//! last LISTENERS of them with `{"joinLeave":true}`, and CHURNERS more that subscribe and
//! unsubscribe in turn, RATE joins and RATE leaves per second, for SECONDS. Measured over
//! the churn (and a short settling after it): the server's CPU, Redis's CPU and commands
//! (when the case runs on Redis), and what each listener received (frames, bytes, join
//! and leave entries). At the end, `presence_stats` checks the channel counts every
//! member and churner that is in.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::history::case_parts;
use crate::net::{connect_many, Target, Transport, Ws};
use crate::{procstat, progress, redis_stats};

/// `comet-bench presence`.
#[derive(Args)]
pub struct PresenceArgs {
    /// `LABEL,URL,PID,CHANNEL[,listen][,redis]` (repeat): a server and a channel;
    /// `listen`: the last `--listeners` members subscribe with `{"joinLeave":true}`;
    /// `redis`: its hub is the `--redis`, whose counters are read.
    #[arg(long = "case", required = true)]
    cases: Vec<CaseSpec>,
    /// Connections subscribed to the channel for the whole run.
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    /// How many of them (the last to subscribe) ask for join and leave events.
    #[arg(long, default_value_t = 1_000)]
    listeners: usize,
    /// Connections that subscribe and unsubscribe in turn.
    #[arg(long, default_value_t = 200)]
    churners: usize,
    /// Joins per second, and as many leaves.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Seconds of churn.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Source addresses 127.0.0.1..=127.0.0.N to connect from.
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Redis's `host:port` (cases marked `redis`).
    #[arg(long)]
    redis: Option<String>,
}

/// One case.
#[derive(Debug, Clone)]
pub struct CaseSpec {
    label: String,
    url: String,
    pid: u32,
    channel: String,
    listen: bool,
    redis: bool,
}

impl FromStr for CaseSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<CaseSpec, String> {
        let (label, url, pid, channel, flags) = case_parts(spec, &["listen", "redis"])?;
        Ok(CaseSpec {
            label,
            url,
            pid,
            channel,
            listen: flags.contains(&"listen"),
            redis: flags.contains(&"redis"),
        })
    }
}

/// What one case measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    label: String,
    members: usize,
    listeners: usize,
    joins: u64,
    leaves: u64,
    /// Seconds measured (the churn and the settling after it).
    seconds: f64,
    /// The server's CPU per second measured, in ms.
    server_cpu_ms_per_s: f64,
    /// Redis's CPU per second measured, in ms (`INFO cpu`).
    redis_cpu_ms_per_s: Option<f64>,
    /// Redis's commands per second (those inside scripts included).
    redis_commands_per_s: Option<f64>,
    /// Per listener, per second of churn: frames, bytes and join/leave entries received.
    frames_per_listener_s: f64,
    bytes_per_listener_s: f64,
    entries_per_listener_s: f64,
    /// `presence_stats` at the end: clients, users.
    clients_at_end: u64,
}

/// What the listeners received, summed.
#[derive(Default)]
struct Received {
    frames: AtomicU64,
    bytes: AtomicU64,
    entries: AtomicU64,
}

fn subscribe_frame(channel: &str, listen: bool) -> String {
    match listen {
        true => format!(r#"subscribe {channel} {{"joinLeave":true}}"#),
        false => format!("subscribe {channel}"),
    }
}

/// Subscribes `ws` and reads until `subscribed <channel>`.
async fn subscribe(ws: &mut Ws, channel: &str, listen: bool) -> Result<(), String> {
    ws.send(Message::text(subscribe_frame(channel, listen)))
        .await
        .map_err(|err| err.to_string())?;
    let ack = format!("subscribed {channel}");
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == ack => return Ok(()),
            Ok(Some(Ok(Message::Text(text)))) if text.as_str().starts_with("error ") => {
                return Err(format!("subscribe {channel}: {text}"))
            }
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Err(format!("the connection ended before `{ack}`")),
            Err(_) => return Err(format!("no `{ack}` within 30 s")),
        }
    }
}

/// Reads a listener's frames until it ends, counting what arrives on `channel`.
async fn count(mut ws: Ws, channel: String, received: Arc<Received>, counting: Arc<AtomicU64>) {
    let join = format!("join {channel} ");
    let leave = format!("leave {channel} ");
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        if counting.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let text = text.as_str();
        received.frames.fetch_add(1, Ordering::Relaxed);
        received
            .bytes
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        let entries = text
            .strip_prefix(&join)
            .or_else(|| text.strip_prefix(&leave))
            .and_then(|list| serde_json::from_str::<Vec<Value>>(list).ok())
            .map_or(0, |list| list.len() as u64);
        received.entries.fetch_add(entries, Ordering::Relaxed);
    }
}

/// Asks `presence_stats` through `ws`; answers the clients.
async fn clients(ws: &mut Ws, channel: &str) -> Result<u64, String> {
    let frame = format!(r#"presence_stats {channel} {{"requestUid":"stats"}}"#);
    ws.send(Message::text(frame))
        .await
        .map_err(|err| err.to_string())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str().starts_with("action ") => {
                let answer: Value = serde_json::from_str(&text.as_str()["action ".len()..])
                    .map_err(|err| err.to_string())?;
                return answer["clients"]
                    .as_u64()
                    .ok_or_else(|| format!("presence_stats answered {answer}"));
            }
            Ok(Some(Ok(_))) => continue,
            _ => return Err("no presence_stats answer within 30 s".into()),
        }
    }
}

/// Runs one case.
async fn run(
    case: &CaseSpec,
    args: &PresenceArgs,
    transport: Transport,
) -> Result<Outcome, String> {
    let target = Target::new(&case.url, args.sources)
        .await?
        .over(transport)?;
    let targets = [target];
    let bar = progress::bar(args.members as u64, &format!("{}: members", case.label));
    let mut members = connect_many(&targets, args.members, 200, &bar).await?;
    bar.finish_and_clear();
    let listeners = if case.listen {
        args.listeners.min(args.members)
    } else {
        0
    };
    let first_listener = args.members - listeners;
    let bar = progress::bar(args.members as u64, &format!("{}: subscribing", case.label));
    for (n, ws) in members.iter_mut().enumerate() {
        subscribe(ws, &case.channel, n >= first_listener).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut churners = connect_many(&targets, args.churners, 100, &progress::bar(0, "")).await?;
    let mut probe = targets[0].connect(usize::MAX / 2).await?;
    // Half the churners are in when the churn starts; each tick then has one of the others
    // join, or the one in longest leave, in turn.
    let mut free: VecDeque<usize> = (0..churners.len()).collect();
    let mut inside: VecDeque<usize> = VecDeque::new();
    for _ in 0..churners.len() / 2 {
        let Some(n) = free.pop_front() else { break };
        subscribe(&mut churners[n], &case.channel, false).await?;
        inside.push_back(n);
    }
    // The listeners read (and count, once the churn starts); the others idle.
    let received = Arc::new(Received::default());
    let counting = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for ws in members.drain(first_listener..) {
        readers.push(tokio::spawn(count(
            ws,
            case.channel.clone(),
            received.clone(),
            counting.clone(),
        )));
    }
    // Let what the set-up caused settle: the last joins go out within a window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let redis_addr = args.redis.as_deref().filter(|_| case.redis);
    let redis_before = redis_addr.map(redis_stats::read).transpose()?;
    let cpu_before = procstat::sample(case.pid).map_err(|err| err.to_string())?;
    counting.store(1, Ordering::Relaxed);
    let started = Instant::now();
    let (mut joins, mut leaves) = (0u64, 0u64);
    let every = Duration::from_secs_f64(1.0 / (2 * args.rate.max(1)) as f64);
    let mut ticker = tokio::time::interval(every);
    for tick in 0..2 * args.rate * args.seconds {
        ticker.tick().await;
        let join = (tick % 2 == 0 && !free.is_empty()) || inside.is_empty();
        let (n, frame) = if join {
            let n = free.pop_front().ok_or("too few churners")?;
            joins += 1;
            inside.push_back(n);
            (n, subscribe_frame(&case.channel, false))
        } else {
            let n = inside.pop_front().ok_or("too few churners")?;
            leaves += 1;
            free.push_back(n);
            (n, format!("unsubscribe {}", case.channel))
        };
        churners[n]
            .send(Message::text(frame))
            .await
            .map_err(|err| err.to_string())?;
    }
    // What the last changes cause goes out within a window; the churners' own acks (a
    // few per second each) stay unread in their sockets.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seconds = started.elapsed().as_secs_f64();
    counting.store(0, Ordering::Relaxed);
    let cpu_after = procstat::sample(case.pid).map_err(|err| err.to_string())?;
    let redis_after = redis_addr.map(redis_stats::read).transpose()?;
    let in_channel = inside.len() as u64 + args.members as u64;
    let clients_at_end = clients(&mut probe, &case.channel).await.unwrap_or(0);
    if clients_at_end != in_channel {
        eprintln!(
            "{}: presence_stats says {clients_at_end} clients, {in_channel} are subscribed \
             (a channel without presence answers 0)",
            case.label
        );
    }
    let redis = redis_before.zip(redis_after).map(|(before, after)| {
        let per = before.per_call(&after, 1);
        (per.cpu_us / 1000.0 / seconds, per.commands / seconds)
    });
    let per_listener_s = |n: u64| match listeners {
        0 => 0.0,
        l => n as f64 / l as f64 / seconds,
    };
    let outcome = Outcome {
        label: case.label.clone(),
        members: args.members,
        listeners,
        joins,
        leaves,
        seconds,
        server_cpu_ms_per_s: (cpu_after.cpu_ns - cpu_before.cpu_ns) as f64 / 1e6 / seconds,
        redis_cpu_ms_per_s: redis.map(|(cpu, _)| cpu),
        redis_commands_per_s: redis.map(|(_, commands)| commands),
        frames_per_listener_s: per_listener_s(received.frames.load(Ordering::Relaxed)),
        bytes_per_listener_s: per_listener_s(received.bytes.load(Ordering::Relaxed)),
        entries_per_listener_s: per_listener_s(received.entries.load(Ordering::Relaxed)),
        clients_at_end,
    };
    drop(members);
    drop(churners);
    for reader in readers {
        reader.abort();
    }
    Ok(outcome)
}

/// Runs every case in turn and prints a table and one JSON line.
pub async fn workload(args: PresenceArgs, transport: Transport) -> Result<(), String> {
    let mut outcomes = Vec::new();
    for case in &args.cases {
        outcomes.push(run(case, &args, transport).await?);
    }
    println!(
        "\n{:<18} {:>7} {:>9} {:>6} {:>6} {:>11} {:>10} {:>10} {:>9} {:>10} {:>9} {:>8}",
        "case",
        "members",
        "listeners",
        "joins",
        "leaves",
        "server ms/s",
        "redis ms/s",
        "redis cmd/s",
        "frames/s",
        "bytes/s",
        "entries/s",
        "clients"
    );
    for o in &outcomes {
        println!(
            "{:<18} {:>7} {:>9} {:>6} {:>6} {:>11.1} {:>10} {:>10} {:>9.2} {:>10.0} {:>9.1} {:>8}",
            o.label,
            o.members,
            o.listeners,
            o.joins,
            o.leaves,
            o.server_cpu_ms_per_s,
            o.redis_cpu_ms_per_s
                .map_or("-".into(), |v| format!("{v:.1}")),
            o.redis_commands_per_s
                .map_or("-".into(), |v| format!("{v:.0}")),
            o.frames_per_listener_s,
            o.bytes_per_listener_s,
            o.entries_per_listener_s,
            o.clients_at_end,
        );
    }
    println!("(frames, bytes and entries are per listener per second)");
    crate::report::print_json("presence", serde_json::json!({ "outcomes": outcomes }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_case() {
        let case: CaseSpec = "jl,ws://127.0.0.1:1/comet/websocket,42,room:bench,listen,redis"
            .parse()
            .unwrap();
        assert_eq!((case.pid, case.channel.as_str()), (42, "room:bench"));
        assert!(case.listen && case.redis);
        assert!("x,ws://x,7".parse::<CaseSpec>().is_err());
        assert!("x,ws://x,7,c,loud".parse::<CaseSpec>().is_err());
    }
}
