//! The fan-out engine: N subscribers on one channel (or spread over several), one
//! publisher, M messages with a sequence number and a send timestamp. It counts every delivery, lost and duplicated
//! ones, the latency of each, and what the server processes spent (CPU, RSS).
//!
//! The `fanout`, `cluster` and baseline runs are all this engine with different targets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, Stream, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::net::{connect_many, Target, Ws};
use crate::procstat;
use crate::progress::{bar, counter_bar};
use crate::redis_stats::{self, Nodes, PerCall};

/// What one fan-out run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A name for the report ("comet", "baseline", …).
    pub label: String,
    /// Where the publisher connects.
    pub publisher: Target,
    /// Where subscribers connect, round-robin.
    pub subscribers: Vec<Target>,
    /// How many subscribers.
    pub count: usize,
    /// Extra subscribers that never read once subscribed (not counted in deliveries).
    pub stalled: usize,
    /// How many messages the publisher sends.
    pub messages: usize,
    /// Messages per second; `None` sends as fast as the socket takes them.
    pub rate: Option<f64>,
    /// Payload size, roughly, in bytes.
    pub payload_bytes: usize,
    /// Channel name; with `channels` above 1, the stem of the names `<channel>-<i>`.
    pub channel: String,
    /// How many channels: subscriber `i` subscribes to channel `i mod channels`, message
    /// `s` goes to channel `s mod channels` only.
    pub channels: usize,
    /// Whether subscribers send `subscribe` (comet) or are subscribed by connecting
    /// (the bare baseline).
    pub subscribe: bool,
    /// Whether the server answers `subscribe` with `subscribed <channel>` (comet does,
    /// jii does not). If not, the publisher sends warm-up messages until every subscriber
    /// has heard one.
    pub acked: bool,
    /// Whether the publisher subscribes to the channel too (a namespace with `publish =
    /// "subscribers"` takes publishes from subscribers only): it is then one of the
    /// `count` subscribers, reading its own messages back, so a message still makes
    /// `count` deliveries.
    pub publisher_subscribes: bool,
    /// Server processes to measure.
    pub pids: Vec<u32>,
    /// How long to wait for stragglers after the last message was sent.
    pub grace: Duration,
    /// The options object of every `subscribe` (e.g. `{"recover":true}`): the server then
    /// answers `subscribed <channel> {…}` and delivers `pub <channel> <offset> <payload>`
    /// frames, whose offsets must grow by one. `None`: today's `subscribe <channel>`.
    pub options: Option<String>,
    /// A Redis (`host:port`) whose `INFO` counters to read around the messages: its
    /// commands and CPU per publication.
    pub redis_addr: Option<String>,
    /// Redis's pid: its CPU per publication from the scheduler's count.
    pub redis_pid: Option<u32>,
    /// Every Redis node (`host:port`, e.g. each master of a Redis Cluster) whose `INFO`
    /// counters to read around the messages, node by node.
    pub redis_nodes: Vec<String>,
}

/// What one fan-out run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub label: String,
    pub subscribers: usize,
    pub messages: usize,
    /// Channels the subscribers and messages were spread over.
    pub channels: usize,
    pub expected: u64,
    pub deliveries: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Messages per second the publisher achieved.
    pub publish_rate: f64,
    pub deliveries_per_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Server CPU time per delivery, in microseconds, over all measured processes.
    pub cpu_us_per_delivery: Option<f64>,
    /// The user-space part of it (no syscalls, no kernel network path).
    pub user_us_per_delivery: Option<f64>,
    /// Server CPU per delivery from the scheduler's per-thread counts (ns resolution; see
    /// [`procstat::Sample::run_ns`]): the figure for short runs, where 10 ms ticks are few.
    pub sched_us_per_delivery: Option<f64>,
    /// Server RSS after the run, in MiB, summed over processes.
    pub rss_mib: Option<f64>,
    /// Server RSS just before the first message, in MiB.
    pub rss_before_mib: Option<f64>,
    /// Subscribers that never read.
    pub stalled: usize,
    /// Deliveries whose offset did not follow the subscriber's previous one by one (only
    /// with positions: `Plan::options`).
    pub out_of_order: u64,
    /// What Redis did per publication (`Plan::redis_addr`).
    pub redis_per_publish: Option<PerCall>,
    /// Redis's CPU per publication from the scheduler's count (`Plan::redis_pid`), in µs.
    pub redis_sched_us_per_publish: Option<f64>,
    /// What each Redis node did per publication (`Plan::redis_nodes`), with the busiest
    /// node's CPU and the sum.
    pub redis_nodes: Option<Nodes>,
}

#[derive(Deserialize)]
struct Probe {
    s: usize,
    t: u64,
}

struct Tally {
    latencies: Histogram<u64>,
    distinct: u64,
    duplicated: u64,
    out_of_order: u64,
    last: Option<Instant>,
}

/// How a subscriber recognises a delivery: `channel <channel> <payload>`, or with
/// positions `pub <channel> <offset> <payload>`.
#[derive(Clone)]
struct Frames {
    prefix: String,
    positioned: bool,
}

impl Frames {
    /// The payload of a delivery, and its offset if it has one.
    fn parse<'a>(&self, text: &'a str) -> Option<(Option<u64>, &'a str)> {
        let rest = text.strip_prefix(self.prefix.as_str())?;
        if !self.positioned {
            return Some((None, rest));
        }
        let (offset, payload) = rest.split_once(' ')?;
        Some((Some(offset.parse().ok()?), payload))
    }
}

/// The frames of one channel of a run.
struct Channel {
    /// `channel <name> `: what the publisher sends (and, without positions, receives).
    prefix: String,
    /// How its deliveries look.
    frames: Frames,
    /// `subscribe <name> [options]`.
    subscribe: String,
    /// The answer to it.
    ack: String,
}

impl Channel {
    fn new(name: &str, options: Option<&str>) -> Channel {
        let prefix = format!("channel {name} ");
        Channel {
            frames: Frames {
                prefix: match options {
                    Some(_) => format!("pub {name} "),
                    None => prefix.clone(),
                },
                positioned: options.is_some(),
            },
            prefix,
            subscribe: match options {
                Some(options) => format!("subscribe {name} {options}"),
                None => format!("subscribe {name}"),
            },
            // With options the answer carries the position: `subscribed <channel> {…}`.
            ack: match options {
                Some(_) => format!("subscribed {name} {{"),
                None => format!("subscribed {name}"),
            },
        }
    }
}

/// How many of `messages` go to channel `channel` of `channels` (message `s` to `s mod
/// channels`).
fn share(messages: usize, channel: usize, channels: usize) -> usize {
    messages / channels + usize::from(channel < messages % channels)
}

/// Runs one fan-out.
pub async fn run(plan: &Plan) -> Result<Outcome, String> {
    let publisher_subscribes = plan.subscribe && plan.publisher_subscribes;
    let channels: Vec<Channel> = match plan.channels {
        0 | 1 => vec![Channel::new(&plan.channel, plan.options.as_deref())],
        n => (0..n)
            .map(|c| Channel::new(&format!("{}-{c}", plan.channel), plan.options.as_deref()))
            .collect(),
    };
    let spread = channels.len();
    if spread > 1 && (publisher_subscribes || !plan.acked) {
        return Err(
            "several channels need subscribe acknowledgements and a publisher apart".into(),
        );
    }
    let others = plan.count - usize::from(publisher_subscribes && plan.count > 0);
    let connecting = bar(others as u64, &format!("{}: connecting", plan.label));
    let mut subscribers = connect_many(&plan.subscribers, others, 256, &connecting).await?;
    connecting.finish_and_clear();
    let mut publisher = plan.publisher.connect(plan.count).await?;
    if plan.subscribe {
        let joining = bar(plan.count as u64, &format!("{}: subscribing", plan.label));
        for (i, ws) in subscribers.iter_mut().enumerate() {
            ws.send(Message::text(channels[i % spread].subscribe.clone()))
                .await
                .map_err(|err| err.to_string())?;
        }
        if publisher_subscribes {
            publisher
                .send(Message::text(channels[0].subscribe.clone()))
                .await
                .map_err(|err| format!("publisher: {err}"))?;
        }
        if plan.acked {
            for (i, ws) in subscribers.iter_mut().enumerate() {
                wait_for_ack(ws, &channels[i % spread].ack).await?;
                joining.inc(1);
            }
            if publisher_subscribes {
                wait_for_ack(&mut publisher, &channels[0].ack).await?;
            }
        } else {
            publisher = warm_up(publisher, &mut subscribers, &channels[0].prefix).await?;
        }
        joining.finish_and_clear();
    }
    // Stalled subscribers: subscribed, then never read again until the end.
    let hidden = indicatif::ProgressBar::hidden();
    let mut stalled = connect_many(&plan.subscribers, plan.stalled, 256, &hidden).await?;
    for (i, ws) in stalled.iter_mut().enumerate() {
        let channel = &channels[i % spread];
        ws.send(Message::text(channel.subscribe.clone()))
            .await
            .map_err(|err| err.to_string())?;
        if plan.acked {
            wait_for_ack(ws, &channel.ack).await?;
        }
    }

    let epoch = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let messages = plan.messages;
    let mut expected = 0;
    let mut tasks: Vec<_> = subscribers
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let slot = Slot {
                channel: i % spread,
                channels: spread,
                messages: share(messages, i % spread, spread),
            };
            expected += slot.messages as u64;
            let frames = channels[slot.channel].frames.clone();
            let (delivered, stop_rx) = (delivered.clone(), stop_rx.clone());
            tokio::spawn(async move {
                let tally = subscriber(&mut ws, frames, slot, epoch, delivered, stop_rx).await;
                let _ = ws.close().await;
                tally
            })
        })
        .collect();
    // The publisher writes from here; what it reads is counted like a subscriber's when it
    // subscribed, and left unread otherwise (as before: comet sends it nothing then).
    let (mut publisher, mut published_back) = publisher.split();
    if publisher_subscribes {
        let frames = channels[0].frames.clone();
        let (delivered, stop_rx) = (delivered.clone(), stop_rx.clone());
        let slot = Slot {
            channel: 0,
            channels: 1,
            messages,
        };
        expected += messages as u64;
        tasks.push(tokio::spawn(async move {
            subscriber(&mut published_back, frames, slot, epoch, delivered, stop_rx).await
        }));
    }

    let redis_pid: Vec<u32> = plan.redis_pid.into_iter().collect();
    let redis_before = match &plan.redis_addr {
        Some(addr) => Some(redis_stats::read(addr)?),
        None => None,
    };
    let nodes_before = redis_stats::read_nodes(&plan.redis_nodes)?;
    let redis_cpu_before = procstat::sample_all(&redis_pid).ok();
    let before = procstat::sample_all(&plan.pids).ok();
    let progress = counter_bar(
        expected,
        &format!("{}: deliveries", plan.label),
        delivered.clone(),
    );
    let pad = "x".repeat(plan.payload_bytes.saturating_sub(24));
    let started = Instant::now();
    for seq in 0..plan.messages {
        if let Some(rate) = plan.rate {
            let due = started + Duration::from_secs_f64(seq as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let sent_at = epoch.elapsed().as_micros() as u64;
        let prefix = &channels[seq % spread].prefix;
        let frame = format!("{prefix}{{\"s\":{seq},\"t\":{sent_at},\"p\":\"{pad}\"}}");
        let message = Message::text(frame);
        let sent = if plan.rate.is_some() || seq % 64 == 63 || seq + 1 == plan.messages {
            publisher.send(message).await
        } else {
            publisher.feed(message).await
        };
        sent.map_err(|err| format!("publisher: {err}"))?;
    }
    let publish_time = started.elapsed();

    // Wait for everything, or for the grace period after the last delivery stalls.
    let mut last_count = 0;
    let mut stalled_since = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = delivered.load(Ordering::Relaxed);
        if now != last_count {
            last_count = now;
            stalled_since = Instant::now();
        } else if stalled_since.elapsed() > plan.grace {
            break;
        }
    }
    let after = procstat::sample_all(&plan.pids).ok();
    let redis_cpu_after = procstat::sample_all(&redis_pid).ok();
    let redis_per_publish = match (&plan.redis_addr, redis_before) {
        (Some(addr), Some(before)) => {
            Some(before.per_call(&redis_stats::read(addr)?, plan.messages as u64))
        }
        _ => None,
    };
    let redis_nodes = (!plan.redis_nodes.is_empty())
        .then(|| redis_stats::read_nodes(&plan.redis_nodes))
        .transpose()?
        .map(|after| {
            Nodes::per_call(
                &plan.redis_nodes,
                &nodes_before,
                &after,
                plan.messages as u64,
            )
        });
    let redis_sched_us_per_publish = match (redis_cpu_before, redis_cpu_after) {
        (Some(b), Some(a)) if plan.redis_pid.is_some() && plan.messages > 0 => a
            .run_ns
            .zip(b.run_ns)
            .map(|(a, b)| a.saturating_sub(b) as f64 / 1000.0 / plan.messages as f64),
        _ => None,
    };
    let _ = stop_tx.send(true);
    drop(stalled);
    progress.finish_and_clear();

    let mut latencies = Histogram::<u64>::new(3).map_err(|err| err.to_string())?;
    let (mut distinct, mut duplicated, mut out_of_order, mut last) = (0, 0, 0, None::<Instant>);
    for task in tasks {
        let tally = task.await.map_err(|err| err.to_string())?;
        latencies
            .add(&tally.latencies)
            .map_err(|err| err.to_string())?;
        distinct += tally.distinct;
        duplicated += tally.duplicated;
        out_of_order += tally.out_of_order;
        last = last.max(tally.last);
    }
    let elapsed = last.map_or(publish_time, |last| last.duration_since(started));
    let deliveries = distinct + duplicated;
    let cpu_us_per_delivery = match (before, after) {
        (Some(b), Some(a)) if deliveries > 0 => {
            Some((a.cpu_ns - b.cpu_ns) as f64 / 1000.0 / deliveries as f64)
        }
        _ => None,
    };
    let user_us_per_delivery = match (before, after) {
        (Some(b), Some(a)) if deliveries > 0 => {
            Some((a.user_ns - b.user_ns) as f64 / 1000.0 / deliveries as f64)
        }
        _ => None,
    };
    let sched_us_per_delivery = match (before, after) {
        (Some(b), Some(a)) if deliveries > 0 => a
            .run_ns
            .zip(b.run_ns)
            .map(|(a, b)| a.saturating_sub(b) as f64 / 1000.0 / deliveries as f64),
        _ => None,
    };
    Ok(Outcome {
        label: plan.label.clone(),
        subscribers: plan.count,
        messages: plan.messages,
        channels: spread,
        expected,
        deliveries,
        lost: expected - distinct,
        duplicated,
        publish_rate: plan.messages as f64 / publish_time.as_secs_f64().max(1e-9),
        deliveries_per_s: deliveries as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_us: latencies.value_at_quantile(0.50),
        p99_us: latencies.value_at_quantile(0.99),
        max_us: latencies.max(),
        cpu_us_per_delivery,
        user_us_per_delivery,
        sched_us_per_delivery,
        rss_mib: after.map(|a| a.rss_bytes as f64 / (1024.0 * 1024.0)),
        rss_before_mib: before.map(|b| b.rss_bytes as f64 / (1024.0 * 1024.0)),
        stalled: plan.stalled,
        out_of_order,
        redis_per_publish,
        redis_sched_us_per_publish,
        redis_nodes,
    })
}

/// Reads until the frame `expected` arrives.
async fn wait_for(ws: &mut Ws, expected: &str) -> Result<(), String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == expected => return Ok(()),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => return Err(format!("waiting for `{expected}`: {other:?}")),
            Err(_) => return Err(format!("no `{expected}` within 30 s")),
        }
    }
}

/// Reads until the answer to `subscribe` arrives: the frame `ack`, or (when `ack` ends
/// with `{`, a subscribe with options) a frame starting with it.
async fn wait_for_ack(ws: &mut Ws, ack: &str) -> Result<(), String> {
    match ack.strip_suffix('{') {
        Some(_) => wait_for_prefix(ws, ack).await,
        None => wait_for(ws, ack).await,
    }
}

/// For a server that does not acknowledge `subscribe`: publishes a warm-up message (which
/// the measuring subscribers ignore: it is no probe) every 100 ms until every subscriber
/// has heard one, so that all of them are subscribed before the measured burst.
async fn warm_up(publisher: Ws, subscribers: &mut [Ws], prefix: &str) -> Result<Ws, String> {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let frame = format!("{prefix}warm-up");
    let sender = tokio::spawn(async move {
        let mut publisher = publisher;
        loop {
            publisher
                .send(Message::text(frame.clone()))
                .await
                .map_err(|err| format!("publisher: {err}"))?;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop_rx.changed() => break,
            }
        }
        Ok::<Ws, String>(publisher)
    });
    let heard = futures_util::future::try_join_all(
        subscribers.iter_mut().map(|ws| wait_for_prefix(ws, prefix)),
    )
    .await;
    let _ = stop_tx.send(true);
    let publisher = sender.await.map_err(|err| err.to_string())??;
    heard?;
    Ok(publisher)
}

/// Reads until a frame starting with `prefix` arrives.
async fn wait_for_prefix(ws: &mut Ws, prefix: &str) -> Result<(), String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str().starts_with(prefix) => return Ok(()),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => return Err(format!("waiting for `{prefix}…`: {other:?}")),
            Err(_) => return Err(format!("no `{prefix}…` within 30 s")),
        }
    }
}

/// Which messages one subscriber gets: those `s` with `s mod channels == channel`, of
/// which there are `messages`.
#[derive(Clone, Copy)]
struct Slot {
    channel: usize,
    channels: usize,
    messages: usize,
}

/// One subscriber: counts what arrives until it has everything or is told to stop.
async fn subscriber<S>(
    ws: &mut S,
    frames: Frames,
    slot: Slot,
    epoch: Instant,
    delivered: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Tally
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut tally = Tally {
        latencies: Histogram::new(3).expect("3 significant digits is a valid histogram"),
        distinct: 0,
        duplicated: 0,
        out_of_order: 0,
        last: None,
    };
    let mut previous = None::<u64>;
    let mut seen = vec![false; slot.messages];
    while (tally.distinct as usize) < slot.messages {
        let next = tokio::select! {
            next = ws.next() => next,
            _ = stop.changed() => break,
        };
        let Some(Ok(Message::Text(text))) = next else {
            if matches!(next, Some(Ok(_))) {
                continue;
            }
            break;
        };
        let Some((offset, payload)) = frames.parse(text.as_str()) else {
            continue;
        };
        if let Some(offset) = offset {
            if previous.is_some_and(|previous| offset != previous + 1) {
                tally.out_of_order += 1;
            }
            previous = Some(offset);
        }
        let Ok(probe) = serde_json::from_str::<Probe>(payload) else {
            continue;
        };
        if probe.s % slot.channels != slot.channel {
            continue;
        }
        let now = epoch.elapsed().as_micros() as u64;
        let _ = tally.latencies.record(now.saturating_sub(probe.t));
        match seen.get_mut(probe.s / slot.channels) {
            Some(seen) if *seen => tally.duplicated += 1,
            Some(seen) => {
                *seen = true;
                tally.distinct += 1;
            }
            None => continue,
        }
        tally.last = Some(Instant::now());
        delivered.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_goes_to_one_channel() {
        // 10 messages over 4 channels: 0,4,8 | 1,5,9 | 2,6 | 3,7.
        let shares: Vec<usize> = (0..4).map(|c| share(10, c, 4)).collect();
        assert_eq!(shares, [3, 3, 2, 2]);
        assert_eq!(shares.iter().sum::<usize>(), 10);
        assert_eq!(share(10, 0, 1), 10);
        assert_eq!(share(3, 5, 8), 0);
    }

    #[test]
    fn a_channel_names_its_frames() {
        let plain = Channel::new("bench-7", None);
        assert_eq!(plain.subscribe, "subscribe bench-7");
        assert_eq!(plain.ack, "subscribed bench-7");
        assert_eq!(plain.frames.parse("channel bench-7 {}"), Some((None, "{}")));
        assert_eq!(plain.frames.parse("channel bench-70 {}"), None);
        let positioned = Channel::new("feed:a", Some(r#"{"recover":true}"#));
        assert_eq!(positioned.ack, "subscribed feed:a {");
        assert_eq!(
            positioned.frames.parse("pub feed:a 4 {}"),
            Some((Some(4), "{}"))
        );
    }
}
