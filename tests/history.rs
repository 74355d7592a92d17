//! History and recovery across real processes on a test-started Redis: a subscriber
//! whose process is killed (`kill -9`) resumes on a restarted process, or on another one,
//! and ends with every message exactly once, in order; a Redis restarted without
//! persistence is said (`recovered: false`, `gap`), never a silent gap; history expires.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/process.rs"]
mod process;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/test_redis.rs"]
mod test_redis;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use process::Cometd;
use serde_json::{Map, Value};
use test_redis::TestRedis;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for a frame that must come.
const WITHIN: Duration = Duration::from_secs(15);

/// A config file with a `feed` namespace that keeps history.
struct Config(PathBuf);

impl Config {
    fn new(name: &str, history_size: usize, history_ttl: u64) -> Config {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("history-{name}-{}.toml", std::process::id()));
        let text = format!(
            "publish_rate = 0\n[namespaces.feed]\nhistory_size = {history_size}\nhistory_ttl = {history_ttl}\nrecover = true\n"
        );
        std::fs::write(&path, text).expect("cannot write the config file");
        Config(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Socket {
    tokio::time::timeout(WITHIN, tokio_tungstenite::connect_async(url))
        .await
        .expect("a connection in time")
        .expect("a connection")
        .0
}

/// The next text frame, or `None` when the connection ended.
async fn next(socket: &mut Socket) -> Option<String> {
    loop {
        match tokio::time::timeout(WITHIN, socket.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(text))) => return Some(text.to_string()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// A subscriber with recovery: its position, and what it received.
struct Subscriber {
    channel: String,
    offset: u64,
    epoch: Option<String>,
    received: Vec<u64>,
    recovered: Vec<bool>,
    gaps: usize,
}

impl Subscriber {
    fn new(channel: &str) -> Subscriber {
        Subscriber {
            channel: channel.to_owned(),
            offset: 0,
            epoch: None,
            received: Vec::new(),
            recovered: Vec::new(),
            gaps: 0,
        }
    }

    /// Subscribes on `socket`, from its position if it has one, and reads until it is in
    /// effect.
    async fn subscribe(&mut self, socket: &mut Socket) {
        let options = match &self.epoch {
            Some(epoch) => format!(
                r#"{{"recover":true,"offset":{},"epoch":"{epoch}"}}"#,
                self.offset
            ),
            None => r#"{"recover":true}"#.to_owned(),
        };
        let frame = format!("subscribe {} {options}", self.channel);
        socket.send(Message::text(frame)).await.expect("sent");
        loop {
            let frame = next(socket).await.expect("subscribed before the end");
            if self.take(&frame) {
                return;
            }
        }
    }

    /// Takes one frame; true for `subscribed`.
    fn take(&mut self, frame: &str) -> bool {
        let channel = &self.channel;
        if let Some(json) = frame.strip_prefix(&format!("subscribed {channel} ")) {
            let at: Map<String, Value> = serde_json::from_str(json).expect("JSON");
            self.epoch = at["epoch"].as_str().map(str::to_owned);
            if let Some(recovered) = at.get("recovered").and_then(Value::as_bool) {
                self.recovered.push(recovered);
            }
            self.offset = at["offset"].as_u64().expect("an offset");
            return true;
        }
        if let Some(json) = frame.strip_prefix(&format!("gap {channel} ")) {
            let at: Map<String, Value> = serde_json::from_str(json).expect("JSON");
            self.epoch = at["epoch"].as_str().map(str::to_owned);
            self.offset = at["offset"].as_u64().expect("an offset");
            self.gaps += 1;
            return false;
        }
        if let Some(rest) = frame.strip_prefix(&format!("pub {channel} ")) {
            let (offset, payload) = rest.split_once(' ').expect("offset and payload");
            let offset: u64 = offset.parse().expect("an offset");
            assert_eq!(offset, self.offset + 1, "positions without gap: {frame}");
            self.offset = offset;
            self.received
                .push(payload.parse().expect("a sequence number"));
        }
        false
    }
}

/// Publishes `1..=count` to `channel` through `url`, a message every `every`, from a task.
fn publish_steadily(
    url: String,
    channel: &'static str,
    count: u64,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut socket = connect(&url).await;
        let mut pace = tokio::time::interval(every);
        for n in 1..=count {
            pace.tick().await;
            socket
                .send(Message::text(format!("channel {channel} {n}")))
                .await
                .expect("published");
        }
        // Read until the server has taken everything (an answer to a last request).
        socket
            .send(Message::text(r#"hello {"heartbeat":false}"#))
            .await
            .expect("sent");
        while let Some(frame) = next(&mut socket).await {
            if frame.starts_with("hello ") {
                break;
            }
            assert!(!frame.starts_with("error "), "a publish failed: {frame}");
        }
    })
}

/// Runs a subscriber on `first` until it has `kill_after` messages, kills its process,
/// and resumes on `resume()`'s process; checks that it ends with `1..=count`.
async fn survive_a_kill(redis: TestRedis, same_process: bool) {
    let config = Config::new(if same_process { "same" } else { "other" }, 5000, 300);
    let prefix = format!("h{}:", std::process::id());
    let extra = ["--config", config.arg()];
    let mut a = Cometd::server("a", &redis.args(), &prefix, &extra);
    let b = Cometd::server("b", &redis.args(), &prefix, &extra);
    let mut subscriber = Subscriber::new("feed:kill");
    let mut socket = connect(&a.ws_url()).await;
    subscriber.subscribe(&mut socket).await;
    let count = 2000;
    let publisher = publish_steadily(b.ws_url(), "feed:kill", count, Duration::from_millis(2));
    while subscriber.received.len() < 500 {
        let frame = next(&mut socket).await.expect("a is alive");
        subscriber.take(&frame);
    }
    a.kill9();
    // Whatever was on its way is lost with the socket.
    while let Some(frame) = next(&mut socket).await {
        subscriber.take(&frame);
    }
    let (resumed_at, _restarted) = if same_process {
        let restarted = Cometd::server("a2", &redis.args(), &prefix, &extra);
        (restarted.ws_url(), Some(restarted))
    } else {
        (b.ws_url(), None)
    };
    let mut socket = connect(&resumed_at).await;
    subscriber.subscribe(&mut socket).await;
    assert_eq!(
        subscriber.recovered,
        [true],
        "the resumption recovered everything"
    );
    while subscriber.offset < count {
        let frame = next(&mut socket).await.expect("the new process is alive");
        subscriber.take(&frame);
    }
    publisher.await.expect("the publisher");
    let expected: Vec<u64> = (1..=count).collect();
    assert_eq!(
        subscriber.received, expected,
        "every message exactly once, in order"
    );
}

async fn a_subscriber_whose_process_was_killed_resumes_on_its_restart_missing_nothing(
    redis: TestRedis,
) {
    survive_a_kill(redis, true).await;
}

async fn a_subscriber_whose_process_was_killed_resumes_on_another_missing_nothing(
    redis: TestRedis,
) {
    survive_a_kill(redis, false).await;
}

async fn a_redis_restart_without_persistence_is_said_never_a_silent_gap(mut redis: TestRedis) {
    let config = Config::new("restart", 100, 300);
    let prefix = format!("r{}:", std::process::id());
    let server = Cometd::server("r", &redis.args(), &prefix, &["--config", config.arg()]);
    let mut live = Subscriber::new("feed:r");
    let mut live_socket = connect(&server.ws_url()).await;
    live.subscribe(&mut live_socket).await;
    let mut away = Subscriber::new("feed:r");
    let mut away_socket = connect(&server.ws_url()).await;
    away.subscribe(&mut away_socket).await;
    let mut publisher = connect(&server.ws_url()).await;
    for n in 1..=10 {
        publisher
            .send(Message::text(format!("channel feed:r {n}")))
            .await
            .unwrap();
    }
    while live.offset < 10 {
        let frame = next(&mut live_socket).await.unwrap();
        live.take(&frame);
    }
    while away.offset < 10 {
        let frame = next(&mut away_socket).await.unwrap();
        away.take(&frame);
    }
    drop(away_socket);
    redis.restart();
    // Publish until one goes through (the server reconnects to Redis on its own).
    let mut n = 11;
    loop {
        publisher
            .send(Message::text(format!("channel feed:r {n}")))
            .await
            .unwrap();
        n += 1;
        let frame = tokio::time::timeout(Duration::from_millis(200), next(&mut live_socket)).await;
        if let Ok(Some(frame)) = frame {
            live.take(&frame);
            if live.gaps > 0 || !live.received.is_empty() && *live.received.last().unwrap() > 10 {
                break;
            }
        }
        assert!(n < 500, "the server never published again");
    }
    // The live subscriber heard that the history was lost: a `gap`, then the new epoch.
    while live.received.last() == Some(&10) {
        let frame = next(&mut live_socket).await.unwrap();
        live.take(&frame);
    }
    assert_eq!(live.gaps, 1, "told of the loss once");
    // The one that was away resumes from its old position: not recovered.
    let mut away_socket = connect(&server.ws_url()).await;
    away.subscribe(&mut away_socket).await;
    assert_eq!(away.recovered, [false]);
}

async fn more_missed_than_history_holds_is_not_recovered_and_history_expires(redis: TestRedis) {
    let config = Config::new("small", 3, 1);
    let prefix = format!("s{}:", std::process::id());
    let server = Cometd::server("s", &redis.args(), &prefix, &["--config", config.arg()]);
    let mut subscriber = Subscriber::new("feed:s");
    let mut socket = connect(&server.ws_url()).await;
    subscriber.subscribe(&mut socket).await;
    let epoch = subscriber.epoch.clone();
    drop(socket);
    let mut publisher = connect(&server.ws_url()).await;
    publisher
        .send(Message::text(r#"subscribe feed:s {"recover":true}"#))
        .await
        .unwrap();
    for n in 1..=5 {
        publisher
            .send(Message::text(format!("channel feed:s {n}")))
            .await
            .unwrap();
    }
    let mut watcher = Subscriber::new("feed:s");
    while watcher.offset < 5 {
        let frame = next(&mut publisher).await.unwrap();
        watcher.take(&frame);
    }
    let mut socket = connect(&server.ws_url()).await;
    subscriber.subscribe(&mut socket).await;
    assert_eq!(subscriber.recovered, [false], "5 missed, 3 kept");
    assert_eq!(subscriber.epoch, epoch);
    assert_eq!(subscriber.offset, 5);
    // The history lives 1 s after its last publication; then a new epoch.
    let url = server.ws_url();
    eventually::eventually("the history expired", || {
        let url = url.clone();
        let old = epoch.clone();
        async move {
            let mut socket = connect(&url).await;
            socket
                .send(Message::text(r#"history feed:s {"requestUid":1}"#))
                .await
                .unwrap();
            let answer = next(&mut socket).await.unwrap();
            let body: Map<String, Value> =
                serde_json::from_str(answer.strip_prefix("action ").unwrap()).unwrap();
            body["epoch"].as_str() != old.as_deref() && body["offset"] == 0
        }
    })
    .await;
}

redis_tests!(
    a_subscriber_whose_process_was_killed_resumes_on_its_restart_missing_nothing,
    a_subscriber_whose_process_was_killed_resumes_on_another_missing_nothing,
    a_redis_restart_without_persistence_is_said_never_a_silent_gap,
    more_missed_than_history_holds_is_not_recovered_and_history_expires,
);
