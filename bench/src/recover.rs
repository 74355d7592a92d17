//! The recovery workload (issue 13): N clients subscribed with positions on a channel
//! whose namespace keeps history drop their connections, M messages are published, and
//! all N reconnect at once with `subscribe <channel> {"recover":true,"offset":…,"epoch":…}`.
//! Measured: the time from the first reconnect until the last client has its
//! `subscribed <channel> {…,"recovered":true}`, what the server (and Redis) spent on it,
//! and whether each client got exactly the M missed publications, in order, with
//! consecutive offsets. Beside it, in the same invocation and on the same server, the
//! same N clients reconnecting without recovery (`subscribe <plain channel>`, done at
//! `subscribed <plain channel>`): the reconnect storm's own cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{connect_many, Target, Ws};
use crate::procstat;
use crate::progress::bar;
use crate::redis_stats::{self, PerCall};

/// How long a client waits for its connection, or for the answer to its `subscribe`.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// What one recovery run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A name for the report.
    pub label: String,
    /// The server.
    pub target: Target,
    /// The server's pid, to measure its CPU.
    pub pid: Option<u32>,
    /// A channel of a namespace with history and `recover`.
    pub channel: String,
    /// A channel without history, for the reconnect storm without recovery.
    pub plain_channel: Option<String>,
    /// How many clients.
    pub clients: usize,
    /// How many messages each misses.
    pub missed: usize,
    /// Reconnections in progress at once.
    pub parallel: usize,
    /// Payload size, roughly, in bytes.
    pub payload_bytes: usize,
    /// Redis's `host:port`, for its counters.
    pub redis_addr: Option<String>,
    /// Redis's pid, for its CPU.
    pub redis_pid: Option<u32>,
    /// Whether one client subscribes alone before the others (on Redis: so that the
    /// history script is loaded before the storm).
    pub warm_up: bool,
}

/// What one reconnect storm measured.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    /// From the first connection attempt until the last client was done, in ms.
    pub total_ms: f64,
    /// Clients done per second over `total_ms`.
    pub clients_per_s: f64,
    /// One client's time from its connection attempt until it was done: p50, p99, max, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Server CPU per client, from `/proc/<pid>/stat` (10 ms ticks), µs.
    pub cpu_us_per_client: Option<f64>,
    /// Server CPU per client, from the scheduler's per-thread counts, µs.
    pub sched_us_per_client: Option<f64>,
    /// What Redis did per client.
    pub redis_per_client: Option<PerCall>,
    /// Redis's CPU per client, from the scheduler's count, µs.
    pub redis_sched_us_per_client: Option<f64>,
}

/// What one recovery run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub label: String,
    pub clients: usize,
    pub missed: usize,
    /// Clients that ended with `"recovered":true`, exactly the missed publications in
    /// order with consecutive offsets, and the channel's position right.
    pub complete: usize,
    /// Clients that did not (connection failures included).
    pub wrong: usize,
    /// The first thing found wrong, if any.
    pub first_wrong: Option<String>,
    /// Publications delivered during the recovery, over all clients.
    pub publications: u64,
    /// The recovery storm.
    pub recovery: Storm,
    /// The same clients reconnecting without recovery, on the plain channel.
    pub reconnect: Option<Storm>,
}

/// The body of `subscribed <channel> {…}`.
#[derive(Debug, Clone, Deserialize)]
struct Position {
    offset: u64,
    epoch: String,
    #[serde(default)]
    recovered: Option<bool>,
}

/// A probe payload: its sequence number.
#[derive(Deserialize)]
struct Probe {
    s: usize,
}

/// What one client of a storm saw.
struct Seen {
    elapsed: Duration,
    publications: Vec<(u64, String)>,
    answer: String,
}

/// Runs one recovery.
pub async fn run(plan: &Plan) -> Result<Outcome, String> {
    let targets = [plan.target.clone()];
    let reconnect = match &plan.plain_channel {
        Some(plain) => {
            let frame = format!("subscribe {plain}");
            let answer = format!("subscribed {plain}");
            let (storm, seen) = storm(plan, "reconnect", |_| frame.clone(), &answer).await?;
            for (n, client) in seen.iter().enumerate() {
                let client = client
                    .as_ref()
                    .map_err(|err| format!("client {n}: {err}"))?;
                if client.answer != answer {
                    return Err(format!("client {n}: answered {:?}", client.answer));
                }
            }
            Some(storm)
        }
        None => None,
    };

    // One client first, alone: on Redis the first read loads the history script, and the
    // storm below should not be the one to load it (see docs/BENCHMARKS.md).
    let subscribe = format!("subscribe {} {{\"recover\":true}}", plan.channel);
    let answer = format!("subscribed {} ", plan.channel);
    if plan.warm_up {
        let mut first = plan.target.connect(plan.clients + 1).await?;
        first
            .send(Message::text(subscribe.clone()))
            .await
            .map_err(|err| format!("first client: {err}"))?;
        read_until(&mut first, &answer, None).await?;
    }

    // Subscribed with positions; each remembers where it stands.
    let connecting = bar(plan.clients as u64, &format!("{}: subscribing", plan.label));
    let mut clients = connect_many(&targets, plan.clients, 256, &connecting).await?;
    for ws in &mut clients {
        ws.send(Message::text(subscribe.clone()))
            .await
            .map_err(|err| err.to_string())?;
    }
    let mut positions = Vec::with_capacity(plan.clients);
    for (n, ws) in clients.iter_mut().enumerate() {
        let text = read_until(ws, &answer, None)
            .await
            .map_err(|err| format!("subscribing client {n}: {err}"))?;
        positions.push(position(&text, &answer)?);
        connecting.inc(1);
    }
    connecting.finish_and_clear();
    let mut publisher = plan.target.connect(plan.clients).await?;
    publisher
        .send(Message::text(subscribe.clone()))
        .await
        .map_err(|err| format!("publisher: {err}"))?;
    read_until(&mut publisher, &answer, None).await?;

    // All drop their connections: the sockets closed, as a lost network would (no close
    // handshake to wait for: the server learns it from the end of the stream).
    drop(clients);

    // What they miss; the publisher hears each back, so all are in history when it is done.
    let pad = "x".repeat(plan.payload_bytes.saturating_sub(16));
    let publish = format!("channel {} ", plan.channel);
    for seq in 0..plan.missed {
        publisher
            .feed(Message::text(format!(
                "{publish}{{\"s\":{seq},\"p\":\"{pad}\"}}"
            )))
            .await
            .map_err(|err| format!("publisher: {err}"))?;
    }
    publisher
        .flush()
        .await
        .map_err(|err| format!("publisher: {err}"))?;
    let heard = format!("pub {} ", plan.channel);
    let mut back = 0;
    let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
    while back < plan.missed {
        let next = tokio::time::timeout_at(deadline, publisher.next())
            .await
            .map_err(|_| format!("publisher heard {back} of {} back", plan.missed))?;
        match next {
            Some(Ok(Message::Text(text))) if text.as_str().starts_with(heard.as_str()) => back += 1,
            Some(Ok(_)) => {}
            other => return Err(format!("publisher: {other:?}")),
        }
    }

    // Everyone back at once, each from its own position.
    let frame = |n: usize| {
        let position = &positions[n];
        format!(
            "subscribe {} {}",
            plan.channel,
            serde_json::json!({"recover": true, "offset": position.offset, "epoch": position.epoch})
        )
    };
    let (recovery, seen) = storm(plan, "recovery", frame, &answer).await?;
    let (mut complete, mut first_wrong, mut publications) = (0, None, 0);
    for (n, client) in seen.into_iter().enumerate() {
        let verdict = client.and_then(|client| {
            publications += client.publications.len() as u64;
            check(&client, &positions[n], plan.missed, &answer)
        });
        match verdict {
            Ok(()) => complete += 1,
            Err(err) => {
                first_wrong.get_or_insert_with(|| format!("client {n}: {err}"));
            }
        }
    }
    let _ = publisher.close().await;
    Ok(Outcome {
        label: plan.label.clone(),
        clients: plan.clients,
        missed: plan.missed,
        complete,
        wrong: plan.clients - complete,
        first_wrong,
        publications,
        recovery,
        reconnect,
    })
}

/// Whether a client got exactly what it missed, in order, and `recovered: true`.
fn check(client: &Seen, from: &Position, missed: usize, answer: &str) -> Result<(), String> {
    if client.publications.len() != missed {
        return Err(format!(
            "{} publications, not {missed}",
            client.publications.len()
        ));
    }
    for (i, (offset, payload)) in client.publications.iter().enumerate() {
        if *offset != from.offset + 1 + i as u64 {
            return Err(format!("publication {i} has offset {offset}"));
        }
        let probe: Probe = serde_json::from_str(payload)
            .map_err(|err| format!("publication {i}: {err}: {payload:.60}"))?;
        if probe.s != i {
            return Err(format!("publication {i} is message {}", probe.s));
        }
    }
    let end = position(&client.answer, answer)?;
    if end.recovered != Some(true) {
        return Err(format!("answered {}", client.answer));
    }
    if end.epoch != from.epoch || end.offset != from.offset + missed as u64 {
        return Err(format!("position after: {}", client.answer));
    }
    Ok(())
}

/// Reads `subscribed <channel> {…}`'s position.
fn position(text: &str, answer: &str) -> Result<Position, String> {
    let body = text
        .strip_prefix(answer)
        .ok_or_else(|| format!("not `{answer}…`: {text:.80}"))?;
    serde_json::from_str(body).map_err(|err| format!("`{text:.80}`: {err}"))
}

/// Reads until a frame starting with `answer` (the end of the subscribe), keeping the
/// `pub` frames of `publications` (their prefix) on the way; gives up after
/// `FRAME_TIMEOUT` in all (not per frame: the server's pings would keep a per-frame
/// timeout from ever firing).
async fn read_until(
    ws: &mut Ws,
    answer: &str,
    publications: Option<(&str, &mut Vec<(u64, String)>)>,
) -> Result<String, String> {
    let mut publications = publications;
    let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no `{answer}…` within {FRAME_TIMEOUT:?}"))?;
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            other => return Err(format!("waiting for `{answer}…`: {other:?}")),
        };
        let text = text.as_str();
        if text.starts_with(answer) {
            return Ok(text.to_owned());
        }
        // A refusal (of the subscribe, or of anything): this client will not be done.
        if text.starts_with("error ") {
            return Err(format!("refused: {text:.200}"));
        }
        if let Some((prefix, kept)) = publications.as_mut() {
            if let Some(rest) = text.strip_prefix(*prefix) {
                let (offset, payload) = rest
                    .split_once(' ')
                    .ok_or_else(|| format!("a broken pub frame: {text:.80}"))?;
                let offset = offset
                    .parse()
                    .map_err(|_| format!("a pub frame's offset: {text:.80}"))?;
                kept.push((offset, payload.to_owned()));
            }
        }
    }
}

/// `plan.clients` connections opened at once (`plan.parallel` in progress), each sending
/// `frame(n)` and reading until `answer…`; the server's (and Redis's) CPU around it all.
async fn storm(
    plan: &Plan,
    what: &str,
    frame: impl Fn(usize) -> String,
    answer: &str,
) -> Result<(Storm, Vec<Result<Seen, String>>), String> {
    let progress = bar(plan.clients as u64, &format!("{}: {what}", plan.label));
    let pids: Vec<u32> = plan.pid.into_iter().collect();
    let redis_pids: Vec<u32> = plan.redis_pid.into_iter().collect();
    let permits = Arc::new(Semaphore::new(plan.parallel.max(1)));
    let prefix = format!("pub {} ", plan.channel);
    let redis_before = match &plan.redis_addr {
        Some(addr) => Some(redis_stats::read(addr)?),
        None => None,
    };
    let redis_cpu_before = procstat::sample_all(&redis_pids).ok();
    let before = procstat::sample_all(&pids).ok();
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.clients)
        .map(|n| {
            let (target, permits, frame) = (plan.target.clone(), permits.clone(), frame(n));
            let (answer, prefix, progress) = (answer.to_owned(), prefix.clone(), progress.clone());
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
                let begun = Instant::now();
                let mut ws = tokio::time::timeout(FRAME_TIMEOUT, target.connect(n))
                    .await
                    .map_err(|_| format!("no connection within {FRAME_TIMEOUT:?}"))??;
                ws.send(Message::text(frame))
                    .await
                    .map_err(|err| err.to_string())?;
                let mut publications = Vec::new();
                let answer =
                    read_until(&mut ws, &answer, Some((&prefix, &mut publications))).await?;
                let elapsed = begun.elapsed();
                progress.inc(1);
                Ok::<_, String>((
                    ws,
                    Seen {
                        elapsed,
                        publications,
                        answer,
                    },
                ))
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.map_err(|err| err.to_string())?);
    }
    let total = started.elapsed();
    let after = procstat::sample_all(&pids).ok();
    let redis_cpu_after = procstat::sample_all(&redis_pids).ok();
    let clients = plan.clients.max(1) as f64;
    let redis_per_client = match (&plan.redis_addr, redis_before) {
        (Some(addr), Some(before)) => {
            Some(before.per_call(&redis_stats::read(addr)?, plan.clients as u64))
        }
        _ => None,
    };
    progress.finish_and_clear();

    let mut latencies = Histogram::<u64>::new(3).map_err(|err| err.to_string())?;
    let mut seen = Vec::with_capacity(results.len());
    let mut open = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok((ws, client)) => {
                let _ = latencies.record(client.elapsed.as_micros() as u64);
                open.push(ws);
                seen.push(Ok(client));
            }
            Err(err) => seen.push(Err(err)),
        }
    }
    // Closed after the readings: what the server spends on letting them go is not counted.
    drop(open);

    let per_client = |a: Option<procstat::Sample>, b: Option<procstat::Sample>| {
        a.zip(b)
            .map(|(a, b)| (a.cpu_ns.saturating_sub(b.cpu_ns)) as f64 / 1000.0 / clients)
    };
    let sched_per_client = |a: Option<procstat::Sample>, b: Option<procstat::Sample>| {
        a.zip(b)
            .and_then(|(a, b)| a.run_ns.zip(b.run_ns))
            .map(|(a, b)| a.saturating_sub(b) as f64 / 1000.0 / clients)
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let storm = Storm {
        total_ms: total.as_secs_f64() * 1000.0,
        clients_per_s: plan.clients as f64 / total.as_secs_f64().max(1e-9),
        p50_ms: ms(latencies.value_at_quantile(0.50)),
        p99_ms: ms(latencies.value_at_quantile(0.99)),
        max_ms: ms(latencies.max()),
        cpu_us_per_client: per_client(after, before),
        sched_us_per_client: sched_per_client(after, before),
        redis_per_client,
        redis_sched_us_per_client: if plan.redis_pid.is_some() {
            sched_per_client(redis_cpu_after, redis_cpu_before)
        } else {
            None
        },
    };
    Ok((storm, seen))
}

/// Prints recovery outcomes as a table.
pub fn print(outcomes: &[Outcome]) {
    println!(
        "\n{:<26} {:>7} {:>6} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>12} {:>13} {:>12}",
        "run",
        "clients",
        "missed",
        "complete",
        "wrong",
        "total ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "sched µs/cl",
        "redis cmd/cl",
        "redis µs/cl"
    );
    let row = |label: String, o: &Outcome, storm: &Storm, complete: String, wrong: String| {
        println!(
            "{:<26} {:>7} {:>6} {:>9} {:>6} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>12} {:>13} {:>12}",
            label,
            o.clients,
            o.missed,
            complete,
            wrong,
            storm.total_ms,
            storm.p50_ms,
            storm.p99_ms,
            storm.max_ms,
            storm
                .sched_us_per_client
                .map_or("-".into(), |cpu| format!("{cpu:.1}")),
            storm
                .redis_per_client
                .as_ref()
                .map_or("-".into(), |redis| format!("{:.2}", redis.commands)),
            storm
                .redis_sched_us_per_client
                .map_or("-".into(), |cpu| format!("{cpu:.1}")),
        );
    };
    for o in outcomes {
        if let Some(reconnect) = &o.reconnect {
            row(
                format!("{} reconnect", o.label),
                o,
                reconnect,
                "-".into(),
                "-".into(),
            );
        }
        row(
            format!("{} recover", o.label),
            o,
            &o.recovery,
            o.complete.to_string(),
            o.wrong.to_string(),
        );
        if let Some(wrong) = &o.first_wrong {
            println!("  {}: first wrong: {wrong}", o.label);
        }
        if let Some(redis) = &o.recovery.redis_per_client {
            println!(
                "  {}: redis per recovering client: {}",
                o.label,
                redis.commands_line(2)
            );
        }
    }
}
