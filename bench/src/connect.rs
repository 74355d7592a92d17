//! The connect workload: how fast connections open and become usable, and what that
//! costs the server, with and without a token to verify (issue 12).
//!
//! One connection is: TCP connect, WebSocket handshake (with `?token=` when the token
//! goes in the URL), `auth <token>` when it goes in a frame, then `subscribe <channel>`,
//! done when `subscribed <channel>` comes back: that answer proves the connection was
//! accepted, authenticated and is usable (a refused one gets `error …` and a 41xx close
//! instead, counted as failed). `parallel` connections are in progress at once; all stay
//! open until the last is done, when the server's CPU is read (`/proc`), then they are
//! closed and the server is given `settle` to finish closing them before the next case.
//! Each server first gets an unmeasured warm-up pass of as many connections, so that
//! every measured pass finds its server in the same state (threads started, memory for
//! that many connections mapped: without it, a server's first pass cost it 17–30 % more
//! CPU per connection than a second one, most likely page faults).
//!
//! The bare baseline (`--baseline`) answers nothing: there a connection is done when its
//! handshake is, which is what the stack itself costs.

use std::str::FromStr;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::auth::{Signing, TokenIn};
use crate::net::{Target, Ws};
use crate::procstat;
use crate::progress::bar;

/// One server to measure, as given on the command line:
/// `LABEL,URL,PID` (no token) or `LABEL,URL,PID,SIGNING` (`hmac:SECRET` or `key:FILE`).
#[derive(Debug, Clone)]
pub struct CaseSpec {
    /// The name in the table.
    pub label: String,
    /// The server's raw WebSocket endpoint.
    pub url: String,
    /// The server's pid.
    pub pid: u32,
    /// How its tokens are signed; none for a server without authentication.
    pub signing: Option<Signing>,
}

impl FromStr for CaseSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<CaseSpec, String> {
        let mut parts = spec.splitn(4, ',');
        let (Some(label), Some(url), Some(pid)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "a case is `LABEL,URL,PID` or `LABEL,URL,PID,hmac:SECRET|key:FILE`, not `{spec}`"
            ));
        };
        let pid = pid
            .parse()
            .map_err(|_| format!("`{pid}` is not a pid (in `{label}`)"))?;
        let signing = parts.next().map(str::parse).transpose()?;
        Ok(CaseSpec {
            label: label.to_owned(),
            url: url.to_owned(),
            pid,
            signing,
        })
    }
}

/// One measured pass.
#[derive(Debug, Clone)]
pub struct Case {
    /// The name in the table (the spec's label, plus where the token went).
    pub label: String,
    /// Where to connect, with the tokens to present.
    pub target: Target,
    /// The server's pid.
    pub pid: u32,
    /// Whether to subscribe and wait for `subscribed` (false: the bare baseline, done at
    /// the handshake).
    pub subscribe: bool,
}

/// What one pass measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The case's name.
    pub label: String,
    /// `query`, `frame`, or none (no token).
    pub token_in: Option<&'static str>,
    /// Connections opened.
    pub connections: usize,
    /// Connections that did not become usable (refused, closed, timed out).
    pub failed: usize,
    /// The first failure's reason, if any.
    pub first_failure: Option<String>,
    /// From the first connect to the last connection usable.
    pub seconds: f64,
    /// Usable connections per second over `seconds`.
    pub connections_per_s: f64,
    /// The median time from the start of the TCP connect to `subscribed` (or to the end
    /// of the handshake), in µs.
    pub p50_us: u64,
    /// Its 99th percentile.
    pub p99_us: u64,
    /// Its maximum.
    pub max_us: u64,
    /// Server CPU (user + system) per usable connection, in microseconds.
    pub cpu_us_per_connection: Option<f64>,
    /// Its user-space part.
    pub user_us_per_connection: Option<f64>,
    /// Server CPU per usable connection from the scheduler's per-thread counts (ns
    /// resolution; see [`procstat::Sample::run_ns`]).
    pub sched_us_per_connection: Option<f64>,
}

/// How long one connection may take to become usable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens `count` connections to `case`'s server, `parallel` at a time, each subscribing
/// to `channel`.
pub async fn run(
    case: &Case,
    count: usize,
    parallel: usize,
    channel: &str,
    settle: Duration,
) -> Result<Outcome, String> {
    let progress = bar(count as u64, &format!("{}: connecting", case.label));
    let before = procstat::sample(case.pid).map_err(|err| format!("pid {}: {err}", case.pid))?;
    let started = Instant::now();
    let results: Vec<Result<(Ws, Duration), String>> = stream::iter(0..count)
        .map(|n| {
            let progress = &progress;
            async move {
                let result = tokio::time::timeout(CONNECT_TIMEOUT, open(case, n, channel))
                    .await
                    .unwrap_or_else(|_| Err(format!("not usable within {CONNECT_TIMEOUT:?}")));
                progress.inc(1);
                result
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let after = procstat::sample(case.pid).map_err(|err| format!("pid {}: {err}", case.pid))?;
    progress.finish_and_clear();

    let mut latencies = Histogram::<u64>::new(3).map_err(|err| err.to_string())?;
    let mut open_sockets = Vec::with_capacity(count);
    let mut first_failure = None;
    for result in results {
        match result {
            Ok((ws, took)) => {
                let _ = latencies.record(took.as_micros() as u64);
                open_sockets.push(ws);
            }
            Err(why) => {
                first_failure.get_or_insert(why);
            }
        }
    }
    let usable = open_sockets.len();
    for ws in &mut open_sockets {
        let _ = ws.close().await;
    }
    drop(open_sockets);
    tokio::time::sleep(settle).await;

    let per_connection = |ns: u64| (usable > 0).then(|| ns as f64 / 1000.0 / usable as f64);
    Ok(Outcome {
        label: case.label.clone(),
        token_in: case.target.credentials.as_ref().map(|c| c.place.as_str()),
        connections: count,
        failed: count - usable,
        first_failure,
        seconds,
        connections_per_s: usable as f64 / seconds.max(1e-9),
        p50_us: latencies.value_at_quantile(0.50),
        p99_us: latencies.value_at_quantile(0.99),
        max_us: latencies.max(),
        cpu_us_per_connection: per_connection(after.cpu_ns.saturating_sub(before.cpu_ns)),
        user_us_per_connection: per_connection(after.user_ns.saturating_sub(before.user_ns)),
        sched_us_per_connection: after
            .run_ns
            .zip(before.run_ns)
            .and_then(|(a, b)| per_connection(a.saturating_sub(b))),
    })
}

/// Opens connection `n` and waits until it is usable.
async fn open(case: &Case, n: usize, channel: &str) -> Result<(Ws, Duration), String> {
    let started = Instant::now();
    let mut ws = case.target.connect(n).await?;
    if case.subscribe {
        ws.send(Message::text(format!("subscribe {channel}")))
            .await
            .map_err(|err| format!("sending `subscribe`: {err}"))?;
        let ack = format!("subscribed {channel}");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == ack => break,
                Some(Ok(Message::Text(text))) if text.as_str().starts_with("error ") => {
                    return Err(format!("refused: {}", text.as_str()));
                }
                Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(err.to_string()),
                None => return Err("the connection ended".into()),
            }
        }
    }
    Ok((ws, started.elapsed()))
}

/// The passes `specs` make: a server without tokens once, one with tokens once for each
/// of `places`.
pub fn cases(
    specs: &[(CaseSpec, Target)],
    places: &[TokenIn],
    pool: usize,
) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (spec, target) in specs {
        match &spec.signing {
            None => cases.push(Case {
                label: spec.label.clone(),
                target: target.clone(),
                pid: spec.pid,
                subscribe: true,
            }),
            Some(signing) => {
                for &place in places {
                    let credentials = signing.credentials(pool, place)?;
                    cases.push(Case {
                        label: format!("{} {}", spec.label, place.as_str()),
                        target: target.clone().with_credentials(Some(credentials)),
                        pid: spec.pid,
                        subscribe: true,
                    });
                }
            }
        }
    }
    Ok(cases)
}

/// Prints the outcomes as a table, each also as a ratio to the first one's CPU.
pub fn print(outcomes: &[Outcome]) {
    println!(
        "\n{:<22} {:>7} {:>6} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>11}",
        "run",
        "conns",
        "failed",
        "conns/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cpu µs/c",
        "user µs/c",
        "sched µs/c",
    );
    let show = |value: Option<f64>, digits: usize| {
        value.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
    };
    for o in outcomes {
        println!(
            "{:<22} {:>7} {:>6} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>10} {:>10} {:>11}",
            o.label,
            o.connections,
            o.failed,
            o.connections_per_s,
            o.p50_us as f64 / 1000.0,
            o.p99_us as f64 / 1000.0,
            o.max_us as f64 / 1000.0,
            show(o.cpu_us_per_connection, 1),
            show(o.user_us_per_connection, 1),
            show(o.sched_us_per_connection, 1),
        );
    }
    if let Some(first) = outcomes.first() {
        for o in outcomes.iter().skip(1) {
            // The scheduler's figure where there is one (ns, not 10 ms ticks).
            let (a, b) = match (o.sched_us_per_connection, first.sched_us_per_connection) {
                (Some(a), Some(b)) => (Some(a), Some(b)),
                _ => (o.cpu_us_per_connection, first.cpu_us_per_connection),
            };
            let ratio = match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "-".into(),
            };
            let extra = match (a, b) {
                (Some(a), Some(b)) => format!("{:+.1} µs", a - b),
                _ => "-".into(),
            };
            println!(
                "{:<22} connections/s {:.0}% of {}; cpu per connection {ratio} ({extra})",
                o.label,
                100.0 * o.connections_per_s / first.connections_per_s.max(1e-9),
                first.label,
            );
        }
    }
    for o in outcomes.iter().filter(|o| o.failed > 0) {
        println!(
            "{}: {} failed, first: {}",
            o.label,
            o.failed,
            o.first_failure.as_deref().unwrap_or("?")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cases() {
        let plain: CaseSpec = "none,ws://127.0.0.1:1/comet/websocket,42".parse().unwrap();
        assert_eq!(plain.pid, 42);
        assert!(plain.signing.is_none());
        let signed: CaseSpec =
            "hs256,ws://h/comet/websocket,7,hmac:a secret, with a comma, of 32+ bytes"
                .parse()
                .unwrap();
        assert_eq!(signed.label, "hs256");
        assert!(signed.signing.is_some());
        assert!("x,ws://h/comet/websocket".parse::<CaseSpec>().is_err());
        assert!("x,ws://h/comet/websocket,pid".parse::<CaseSpec>().is_err());
    }
}
