//! The idle workload: open N connections that each subscribe to a channel and then sit
//! still; report the server's resident memory per connection.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{connect_many, Target};
use crate::procstat;
use crate::progress::bar;

/// What the idle run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub connections: usize,
    pub channels: usize,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    /// (after − before) / connections, in KiB.
    pub kib_per_connection: f64,
}

/// Opens `connections` subscribed connections spread over `channels` channels (no
/// subscriptions when `channels` is 0: the bare baseline has none), waits for the server
/// to settle, and measures its RSS.
pub async fn run(
    target: &Target,
    pid: u32,
    connections: usize,
    channels: usize,
    settle: Duration,
) -> Result<Outcome, String> {
    let before = procstat::sample(pid).map_err(|err| format!("pid {pid}: {err}"))?;
    let progress = bar(connections as u64, "idle: connecting");
    let mut sockets =
        connect_many(std::slice::from_ref(target), connections, 256, &progress).await?;
    progress.finish_and_clear();

    let progress = bar(connections as u64, "idle: subscribing");
    for (n, ws) in sockets.iter_mut().enumerate().filter(|_| channels > 0) {
        let channel = format!("idle-{}", n % channels.max(1));
        ws.send(Message::text(format!("subscribe {channel}")))
            .await
            .map_err(|err| err.to_string())?;
    }
    for ws in sockets.iter_mut().filter(|_| channels > 0) {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.starts_with("subscribed ") => break,
                Ok(Some(Ok(_))) => continue,
                other => return Err(format!("no subscribe ack: {other:?}")),
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    tokio::time::sleep(settle).await;
    let after = procstat::sample(pid).map_err(|err| format!("pid {pid}: {err}"))?;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let outcome = Outcome {
        connections,
        channels,
        rss_before_mib: mib(before.rss_bytes),
        rss_after_mib: mib(after.rss_bytes),
        kib_per_connection: (after.rss_bytes.saturating_sub(before.rss_bytes)) as f64
            / 1024.0
            / connections.max(1) as f64,
    };
    drop(sockets);
    Ok(outcome)
}
