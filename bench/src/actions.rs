//! The actions workload: action calls with a fixed number in flight, round trips per
//! second and their latency. Point it at a process that holds connections; which process
//! runs the calls (itself, or others through Redis) is the cluster's business.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{connect_many, Target, Ws};
use crate::procstat;
use crate::progress::{bar, counter_bar};
use crate::redis_stats::{self, Nodes, PerCall};

/// What the actions run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The route, or the first and last of the routes (`bench/echo0..bench/echo29`).
    pub route: String,
    /// How many routes the calls were spread over.
    pub routes: usize,
    pub connections: usize,
    pub in_flight: usize,
    pub calls: u64,
    pub errors: u64,
    pub calls_per_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// CPU of every `--pid` process together, per call.
    pub cpu_us_per_call: Option<f64>,
    /// The same, process by process: (pid, µs per call).
    pub cpu_us_per_call_by_pid: Vec<(u32, f64)>,
    /// CPU of Redis (`--redis-pid`), per call.
    pub redis_cpu_us_per_call: Option<f64>,
    /// What Redis did per call (`--redis`).
    pub redis_per_call: Option<PerCall>,
    /// What each Redis node did per call (`--redis-node`, repeated for a Redis Cluster's
    /// masters), and the busiest node and the sum.
    pub redis_nodes: Option<Nodes>,
}

/// The knobs of an actions run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<Target>,
    /// The routes called: call `n` of connection `c` goes to route `(c + n) mod len`, so
    /// every route gets an even share at any moment.
    pub routes: Vec<String>,
    pub connections: usize,
    pub in_flight: usize,
    pub calls: usize,
    pub pids: Vec<u32>,
    /// Redis's pid, to measure its CPU apart.
    pub redis_pid: Option<u32>,
    /// Redis's `host:port`, to read its counters.
    pub redis_addr: Option<String>,
    /// Every Redis node (`host:port`) whose counters to read: CPU and commands per node.
    pub redis_nodes: Vec<String>,
}

/// Runs the calls and measures.
pub async fn run(plan: &Plan) -> Result<Outcome, String> {
    let progress = bar(plan.connections as u64, "actions: connecting");
    let sockets = connect_many(&plan.targets, plan.connections, 128, &progress).await?;
    progress.finish_and_clear();

    let done = Arc::new(AtomicU64::new(0));
    let per_connection = plan.calls / plan.connections.max(1);
    let total = (per_connection * plan.connections) as u64;
    let progress = counter_bar(total, "actions: calls", done.clone());
    let cpu = |pids: &[u32]| -> Option<Vec<u64>> {
        pids.iter()
            .map(|pid| procstat::sample(*pid).ok().map(|s| s.cpu_ns))
            .collect()
    };
    let redis_pid: Vec<u32> = plan.redis_pid.into_iter().collect();
    let before = (cpu(&plan.pids), cpu(&redis_pid));
    let redis_before = match &plan.redis_addr {
        Some(addr) => Some(redis_stats::read(addr)?),
        None => None,
    };
    let nodes_before = redis_stats::read_nodes(&plan.redis_nodes)?;
    if plan.routes.is_empty() {
        return Err("no route to call".into());
    }
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, ws)| {
            tokio::spawn(caller(
                ws,
                plan.routes.clone(),
                index,
                per_connection,
                plan.in_flight.max(1),
                done.clone(),
            ))
        })
        .collect();
    let mut latencies = Histogram::<u64>::new(3).map_err(|err| err.to_string())?;
    let mut errors = 0;
    for task in tasks {
        let (histogram, failed) = task.await.map_err(|err| err.to_string())??;
        latencies.add(&histogram).map_err(|err| err.to_string())?;
        errors += failed;
    }
    let elapsed = started.elapsed();
    let after = (cpu(&plan.pids), cpu(&redis_pid));
    let redis_per_call = match (&plan.redis_addr, redis_before) {
        (Some(addr), Some(before)) => Some(before.per_call(&redis_stats::read(addr)?, total)),
        _ => None,
    };
    let redis_nodes = (!plan.redis_nodes.is_empty())
        .then(|| redis_stats::read_nodes(&plan.redis_nodes))
        .transpose()?
        .map(|after| Nodes::per_call(&plan.redis_nodes, &nodes_before, &after, total));
    progress.finish_and_clear();
    let per_call = |before: &Option<Vec<u64>>, after: &Option<Vec<u64>>| -> Option<Vec<f64>> {
        match (before, after) {
            (Some(b), Some(a)) if total > 0 && !b.is_empty() => Some(
                b.iter()
                    .zip(a)
                    .map(|(b, a)| a.saturating_sub(*b) as f64 / 1000.0 / total as f64)
                    .collect(),
            ),
            _ => None,
        }
    };
    let by_pid = per_call(&before.0, &after.0).unwrap_or_default();
    Ok(Outcome {
        route: match plan.routes.as_slice() {
            [one] => one.clone(),
            [first, .., last] => format!("{first}..{last}"),
            [] => String::new(),
        },
        routes: plan.routes.len(),
        connections: plan.connections,
        in_flight: plan.in_flight,
        calls: total,
        errors,
        calls_per_s: total as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_us: latencies.value_at_quantile(0.5),
        p99_us: latencies.value_at_quantile(0.99),
        max_us: latencies.max(),
        cpu_us_per_call: (!by_pid.is_empty()).then(|| by_pid.iter().sum()),
        cpu_us_per_call_by_pid: plan.pids.iter().copied().zip(by_pid).collect(),
        redis_cpu_us_per_call: per_call(&before.1, &after.1).and_then(|r| r.first().copied()),
        redis_per_call,
        redis_nodes,
    })
}

/// One connection: keeps `in_flight` calls outstanding until `calls` are answered.
async fn caller(
    mut ws: Ws,
    routes: Vec<String>,
    offset: usize,
    calls: usize,
    in_flight: usize,
    done: Arc<AtomicU64>,
) -> Result<(Histogram<u64>, u64), String> {
    let mut latencies = Histogram::<u64>::new(3).map_err(|err| err.to_string())?;
    let mut sent_at: Vec<Option<Instant>> = vec![None; calls];
    let (mut sent, mut answered, mut errors) = (0, 0, 0);
    let frame = |n: usize| {
        let route = &routes[(offset + n) % routes.len()];
        Message::text(format!(r#"action {route} {{"requestUid":{n},"n":{n}}}"#))
    };
    while sent < calls.min(in_flight) {
        sent_at[sent] = Some(Instant::now());
        ws.send(frame(sent)).await.map_err(|err| err.to_string())?;
        sent += 1;
    }
    while answered < calls {
        let next = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .map_err(|_| "no answer within 60 s".to_owned())?;
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            other => return Err(format!("connection ended: {other:?}")),
        };
        let Some(json) = text.as_str().strip_prefix("action ") else {
            continue;
        };
        let answer: Value = serde_json::from_str(json).map_err(|err| err.to_string())?;
        let Some(n) = answer["requestUid"].as_u64().map(|n| n as usize) else {
            continue;
        };
        if answer.get("error").is_some() {
            errors += 1;
        }
        if let Some(at) = sent_at.get_mut(n).and_then(Option::take) {
            let _ = latencies.record(at.elapsed().as_micros() as u64);
            answered += 1;
            done.fetch_add(1, Ordering::Relaxed);
        }
        if sent < calls {
            sent_at[sent] = Some(Instant::now());
            ws.send(frame(sent)).await.map_err(|err| err.to_string())?;
            sent += 1;
        }
    }
    let _ = ws.close().await;
    Ok((latencies, errors))
}
