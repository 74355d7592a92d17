//! Backpressure: a subscriber that stops reading must not grow the server's memory, and
//! must not slow anyone else down. One stalled client among fast ones, over the raw
//! WebSocket and over SockJS, under both slow-consumer policies: close with 4001, or drop
//! the oldest frames with a `messages_dropped` notice.
//!
//! The server runs in this test process, so its memory is this process's resident set
//! (`VmRSS` in `/proc/self/status`): measured after a warm-up and again after ~48 MiB
//! more were published at the stalled client, its growth must stay far below that. No
//! assertion is about time: the publisher goes round by round, each round once every fast
//! client has read the previous one.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use comet::{Comet, Limits, SlowConsumerPolicy};
use common::{TestServer, PATIENCE};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CHANNEL: &str = "flood";
/// Payload bytes per message.
const PAYLOAD: usize = 16 * 1024;
/// Messages per round: 512 KiB, under the 1 MiB outbound byte bound, so that a fast
/// client never falls a whole queue behind.
const ROUND: usize = 32;
/// Rounds before the first memory reading (the stalled client's socket buffers fill).
const WARM_UP_ROUNDS: usize = 16;
/// Rounds measured: 96 × 512 KiB = 48 MiB more at the stalled client.
const MEASURED_ROUNDS: usize = 96;
/// What the server may grow by meanwhile: a quarter of what was pushed at the stalled
/// client (its queue is bounded at 1 MiB; the rest is allocator noise).
const MAX_GROWTH: usize = MEASURED_ROUNDS * ROUND * PAYLOAD / 4;

/// The memory measurements must not overlap: one scenario at a time in this binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `<prefix>/websocket`: one comet frame per message.
    Raw,
    /// `<prefix>/<server>/<session>/websocket`: SockJS framing (`o`, `a[...]`, `c[...]`).
    SockJs,
}

/// A client on either transport that reads comet frames.
struct Client {
    ws: Ws,
    kind: Kind,
    /// Frames unwrapped from an `a[...]` not handed out yet.
    backlog: std::collections::VecDeque<String>,
}

/// How a client's stream ended.
#[derive(Debug, PartialEq)]
enum End {
    /// A WebSocket close frame (raw) or a SockJS `c[code,…]` frame, with its code.
    Closed(u16),
    /// The connection ended without one.
    Dropped,
}

impl Client {
    async fn connect(server: &TestServer, kind: Kind) -> Client {
        let url = match kind {
            Kind::Raw => server.ws_url(),
            Kind::SockJs => format!(
                "ws://{}/comet/000/{}/websocket",
                server.addr,
                uuid::Uuid::new_v4().simple()
            ),
        };
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        let mut client = Client {
            ws,
            kind,
            backlog: Default::default(),
        };
        if kind == Kind::SockJs {
            assert_eq!(client.raw_text().await, Some("o".to_owned()));
        }
        client.send(&format!("subscribe {CHANNEL}")).await;
        assert_eq!(client.next().await, Ok(format!("subscribed {CHANNEL}")));
        client
    }

    async fn send(&mut self, frame: &str) {
        let text = match self.kind {
            Kind::Raw => frame.to_owned(),
            Kind::SockJs => serde_json::to_string(&[frame]).expect("a string encodes"),
        };
        self.ws.send(Message::text(text)).await.expect("sent");
    }

    /// The next WebSocket text message, or `None` when the stream ended (a close frame
    /// comes back as `Some("\0close <code>")`).
    async fn raw_text(&mut self) -> Option<String> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message within the patience window");
            match next {
                Some(Ok(Message::Text(text))) => return Some(text.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    return Some(format!("\0close {code}"));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next comet frame, or how the connection ended.
    async fn next(&mut self) -> Result<String, End> {
        loop {
            if let Some(frame) = self.backlog.pop_front() {
                return Ok(frame);
            }
            let Some(text) = self.raw_text().await else {
                return Err(End::Dropped);
            };
            if let Some(code) = text.strip_prefix("\0close ") {
                return match self.kind {
                    Kind::Raw => Err(End::Closed(code.parse().unwrap_or(0))),
                    // The SockJS close frame `c[…]` came before; this is the socket's end.
                    Kind::SockJs => Err(End::Dropped),
                };
            }
            match self.kind {
                Kind::Raw => return Ok(text),
                Kind::SockJs => match text.as_bytes().first() {
                    Some(b'a') => {
                        let messages: Vec<String> =
                            serde_json::from_str(&text[1..]).expect("a[...] holds strings");
                        self.backlog.extend(messages);
                    }
                    Some(b'c') => {
                        let (code, _): (u16, String) =
                            serde_json::from_str(&text[1..]).expect("c[code,reason]");
                        return Err(End::Closed(code));
                    }
                    _ => continue, // `h`
                },
            }
        }
    }
}

/// The sequence number of a `channel flood <seq> xxx…` frame.
fn seq_of(frame: &str) -> Option<usize> {
    let payload = frame.strip_prefix("channel flood ")?;
    payload.get(..8)?.parse().ok()
}

fn payload(seq: usize) -> String {
    format!("{seq:08}{}", "x".repeat(PAYLOAD - 8))
}

/// Reads every message in order on a fast client; counts them into `received`.
/// Tells `changed` after each message and on a failure.
fn read_fast(
    mut client: Client,
    received: Arc<AtomicUsize>,
    failure: Arc<Mutex<Option<String>>>,
    changed: Arc<Notify>,
) {
    actix_web::rt::spawn(async move {
        let total = (WARM_UP_ROUNDS + MEASURED_ROUNDS) * ROUND;
        let mut expected = 0;
        while expected < total {
            let problem = match client.next().await {
                Ok(frame) => match seq_of(&frame) {
                    Some(seq) if seq == expected => {
                        expected += 1;
                        received.store(expected, Ordering::Release);
                        changed.notify_one();
                        continue;
                    }
                    _ => format!(
                        "{:?} fast client: expected message {expected}, got {}",
                        client.kind,
                        &frame[..frame.len().min(80)]
                    ),
                },
                Err(end) => format!(
                    "{:?} fast client ended after {expected} messages: {end:?}",
                    client.kind
                ),
            };
            *failure.lock().expect("not poisoned") = Some(problem);
            changed.notify_one();
            return;
        }
    });
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<usize>().ok())
        .expect("VmRSS in kB")
        * 1024
}

/// Publishes round after round; after each, waits for every fast client to have it all
/// (woken by `changed` as they read).
async fn publish_rounds(
    comet: &Comet,
    rounds: std::ops::Range<usize>,
    fast: &[Arc<AtomicUsize>],
    failure: &Arc<Mutex<Option<String>>>,
    changed: &Notify,
) {
    for round in rounds {
        for n in 0..ROUND {
            comet
                .publish(CHANNEL, payload(round * ROUND + n))
                .await
                .expect("published");
        }
        let want = (round + 1) * ROUND;
        while fast.iter().any(|r| r.load(Ordering::Acquire) < want) {
            if let Some(problem) = failure.lock().expect("not poisoned").take() {
                panic!("{problem}");
            }
            // A change after the check above leaves a permit: no wake-up is lost.
            tokio::time::timeout(PATIENCE, changed.notified())
                .await
                .unwrap_or_else(|_| panic!("fast clients stopped receiving in round {round}"));
        }
    }
}

/// One stalled client of `stalled` kind among a fast raw and a fast SockJS client;
/// returns the stalled client once everything was published.
async fn flood(policy: SlowConsumerPolicy, stalled: Kind) -> (TestServer, Client) {
    let server = TestServer::start(Comet::builder().limits(Limits {
        slow_consumer: policy,
        ..Limits::default()
    }))
    .await;
    let failure = Arc::new(Mutex::new(None));
    let changed = Arc::new(Notify::new());
    let mut counters = Vec::new();
    for kind in [Kind::Raw, Kind::SockJs] {
        let received = Arc::new(AtomicUsize::new(0));
        read_fast(
            Client::connect(&server, kind).await,
            received.clone(),
            failure.clone(),
            changed.clone(),
        );
        counters.push(received);
    }
    // Subscribed, then never read until the end.
    let stalled = Client::connect(&server, stalled).await;

    publish_rounds(
        &server.comet,
        0..WARM_UP_ROUNDS,
        &counters,
        &failure,
        &changed,
    )
    .await;
    let before = rss_bytes();
    let total = WARM_UP_ROUNDS + MEASURED_ROUNDS;
    publish_rounds(
        &server.comet,
        WARM_UP_ROUNDS..total,
        &counters,
        &failure,
        &changed,
    )
    .await;
    let after = rss_bytes();
    let growth = after.saturating_sub(before);
    let pushed = MEASURED_ROUNDS * ROUND * PAYLOAD;
    eprintln!(
        "{policy:?}, stalled {:?} client: RSS {:.1} → {:.1} MiB (+{:.1} MiB) while {:.0} MiB went to the stalled client",
        stalled.kind,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        growth as f64 / 1048576.0,
        pushed as f64 / 1048576.0,
    );
    assert!(
        growth < MAX_GROWTH,
        "server memory grew by {growth} bytes while {pushed} bytes were published at a client \
         that does not read"
    );
    (server, stalled)
}

async fn closed_as_slow_consumer(kind: Kind) {
    let _serial = SERIAL.lock().await;
    let (server, mut stalled) = flood(SlowConsumerPolicy::Close, kind).await;
    // It gets what was in its socket buffers, then the end.
    let mut got = 0;
    let end = loop {
        match stalled.next().await {
            Ok(frame) => {
                assert!(frame.starts_with("channel flood "), "{frame}");
                got += 1;
            }
            Err(end) => break end,
        }
    };
    eprintln!("the stalled {kind:?} client read {got} messages, then {end:?}");
    match kind {
        // The close frame jumps the queue: it is the next thing after the socket buffers.
        Kind::Raw => assert_eq!(end, End::Closed(4001)),
        // `c[4001,…]` goes after the frames the SockJS writer already holds (up to 48);
        // a client that reads nothing for longer than actix-web's
        // `client_disconnect_timeout` (1 s) after that has its TCP connection dropped
        // instead: ended either way, and the server holds nothing more for it.
        Kind::SockJs => assert!(matches!(end, End::Closed(4001) | End::Dropped), "{end:?}"),
    }
    server.stop().await;
}

async fn oldest_dropped_with_a_notice(kind: Kind) {
    let _serial = SERIAL.lock().await;
    let (server, mut stalled) = flood(SlowConsumerPolicy::DropOldest, kind).await;
    let last = (WARM_UP_ROUNDS + MEASURED_ROUNDS) * ROUND - 1;
    let (mut notices, mut previous) = (0, None);
    loop {
        let frame = stalled.next().await.expect("the connection lives on");
        if frame.starts_with(r#"error {"code":"messages_dropped""#) {
            notices += 1;
            continue;
        }
        let seq = seq_of(&frame).unwrap_or_else(|| panic!("unexpected frame {frame}"));
        // In order, and any gap is announced.
        if let Some(previous) = previous {
            assert!(seq > previous, "{seq} after {previous}");
        }
        previous = Some(seq);
        if seq == last {
            break;
        }
    }
    assert!(
        notices >= 1,
        "the client was told that messages were dropped"
    );
    // Still a working connection.
    stalled.send(&format!("unsubscribe {CHANNEL}")).await;
    assert_eq!(stalled.next().await, Ok(format!("unsubscribed {CHANNEL}")));
    server.stop().await;
}

#[actix_web::test]
async fn a_stalled_websocket_client_is_closed_with_4001_and_costs_bounded_memory() {
    closed_as_slow_consumer(Kind::Raw).await;
}

#[actix_web::test]
async fn a_stalled_sockjs_client_is_closed_with_4001_and_costs_bounded_memory() {
    closed_as_slow_consumer(Kind::SockJs).await;
}

#[actix_web::test]
async fn a_stalled_websocket_client_under_drop_oldest_gets_a_notice_and_the_newest() {
    oldest_dropped_with_a_notice(Kind::Raw).await;
}

#[actix_web::test]
async fn a_stalled_sockjs_client_under_drop_oldest_gets_a_notice_and_the_newest() {
    oldest_dropped_with_a_notice(Kind::SockJs).await;
}
