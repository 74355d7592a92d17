//! History and recovery at actor level, on the in-memory hub: positions, recovery with
//! and without a gap, a lost epoch, more missed than history holds, the latest value on
//! subscribe, `history` requests, and the live stream meeting the recovered past without
//! gap or duplicate while publications keep coming.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::Recipient;
use bytes::Bytes;
use comet_actors::hub::history::{HistoryPage, HistoryPolicy, HistoryQuery, Position};
use comet_actors::hub::HistoryKeys;
use comet_actors::{Hub, HubError, HubMessage, MemoryHub};
use futures::future::BoxFuture;

use comet_actors::auth::Namespace;
use comet_actors::protocol::{parse_server_frame, ServerFrame};
use comet_actors::{NodeConfig, Router};
use serde_json::{Map, Value};
use support::{node, Client};

fn config() -> NodeConfig {
    let mut config = NodeConfig {
        listen_actions: false,
        ..NodeConfig::default()
    };
    config.limits.publish_rate = comet_actors::auth::Rate::UNLIMITED;
    let namespaces = &mut config.security.namespaces;
    namespaces.declare(
        "feed",
        Namespace::new()
            .history(5, Duration::from_secs(60))
            .recover(true),
    );
    namespaces.declare(
        "ticker",
        Namespace::new()
            .history(10, Duration::from_secs(60))
            .recover(true)
            .send_latest(true),
    );
    config
}

/// `subscribed <channel> {…}` → its object.
fn subscribed_at(frame: &str, channel: &str) -> Map<String, Value> {
    let json = frame
        .strip_prefix(&format!("subscribed {channel} "))
        .unwrap_or_else(|| panic!("expected subscribed {channel} {{…}}, got {frame}"));
    serde_json::from_str(json).unwrap()
}

#[actix_rt::test]
async fn positioned_and_plain_subscribers_of_one_channel_get_their_own_frames() {
    let node = node(config(), Router::new());
    let mut positioned = Client::start(&node);
    positioned.send(r#"subscribe feed:a {"recover":true}"#);
    let at = subscribed_at(&positioned.frame().await, "feed:a");
    assert_eq!(at["offset"], 0);
    let epoch = at["epoch"].as_str().unwrap().to_owned();
    assert!(!at.contains_key("recovered"));
    let mut plain = Client::start(&node);
    plain.subscribe("feed:a").await;
    plain.send("channel feed:a hello");
    assert_eq!(plain.frame().await, "channel feed:a hello");
    assert_eq!(positioned.frame().await, "pub feed:a 1 hello");
    node.publish("feed:a", "from the server").await.unwrap();
    assert_eq!(positioned.frame().await, "pub feed:a 2 from the server");
    let page = node.history("feed:a", None, 10).await.unwrap();
    assert_eq!(
        (page.position.offset, &*page.position.epoch),
        (2, epoch.as_str())
    );
}

#[actix_rt::test]
async fn a_client_that_resumes_gets_what_it_missed_then_the_live_stream() {
    let node = node(config(), Router::new());
    let mut client = Client::start(&node);
    client.send(r#"subscribe feed:b {"recover":true}"#);
    let epoch = subscribed_at(&client.frame().await, "feed:b")["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    node.publish("feed:b", "1").await.unwrap();
    assert_eq!(client.frame().await, "pub feed:b 1 1");
    client.send("unsubscribe feed:b");
    assert_eq!(client.frame().await, "unsubscribed feed:b");
    for n in 2..=4 {
        node.publish("feed:b", n.to_string()).await.unwrap();
    }
    client.send(&format!(
        r#"subscribe feed:b {{"recover":true,"offset":1,"epoch":"{epoch}"}}"#
    ));
    assert_eq!(client.frame().await, "pub feed:b 2 2");
    assert_eq!(client.frame().await, "pub feed:b 3 3");
    assert_eq!(client.frame().await, "pub feed:b 4 4");
    let at = subscribed_at(&client.frame().await, "feed:b");
    assert_eq!(
        (at["offset"].as_u64(), at["recovered"].as_bool()),
        (Some(4), Some(true))
    );
    node.publish("feed:b", "5").await.unwrap();
    assert_eq!(client.frame().await, "pub feed:b 5 5");

    // Nothing missed: recovered, nothing replayed.
    client.send("unsubscribe feed:b");
    assert_eq!(client.frame().await, "unsubscribed feed:b");
    client.send(&format!(
        r#"subscribe feed:b {{"recover":true,"offset":5,"epoch":"{epoch}"}}"#
    ));
    let at = subscribed_at(&client.frame().await, "feed:b");
    assert_eq!(at["recovered"], true);
}

#[actix_rt::test]
async fn more_missed_than_history_holds_or_another_epoch_is_not_recovered() {
    let node = node(config(), Router::new());
    for n in 1..=8 {
        node.publish("feed:c", n.to_string()).await.unwrap();
    }
    let epoch = node
        .history("feed:c", None, 1)
        .await
        .unwrap()
        .position
        .epoch;
    let mut client = Client::start(&node);
    // History holds 4..=8 (size 5): from 1, offsets 2 and 3 are gone.
    client.send(&format!(
        r#"subscribe feed:c {{"recover":true,"offset":1,"epoch":"{epoch}"}}"#
    ));
    let at = subscribed_at(&client.frame().await, "feed:c");
    assert_eq!(
        (at["offset"].as_u64(), at["recovered"].as_bool()),
        (Some(8), Some(false))
    );
    // From 3, everything missed is there.
    let mut other = Client::start(&node);
    other.send(&format!(
        r#"subscribe feed:c {{"recover":true,"offset":3,"epoch":"{epoch}"}}"#
    ));
    for n in 4..=8 {
        assert_eq!(other.frame().await, format!("pub feed:c {n} {n}"));
    }
    assert_eq!(
        subscribed_at(&other.frame().await, "feed:c")["recovered"],
        true
    );
    // Another epoch: the history it knew is gone.
    let mut stale = Client::start(&node);
    stale.send(r#"subscribe feed:c {"recover":true,"offset":7,"epoch":"0ld3p0ch"}"#);
    let at = subscribed_at(&stale.frame().await, "feed:c");
    assert_eq!(at["recovered"], false);
    assert_eq!(at["epoch"], &*epoch);
}

#[actix_rt::test]
async fn history_that_expired_starts_a_new_epoch_and_says_so() {
    tokio::time::pause();
    let node = node(config(), Router::new());
    node.publish("feed:d", "old").await.unwrap();
    let before = node.history("feed:d", None, 5).await.unwrap().position;
    tokio::time::advance(Duration::from_secs(61)).await;
    let mut client = Client::start(&node);
    client.send(&format!(
        r#"subscribe feed:d {{"recover":true,"offset":1,"epoch":"{}"}}"#,
        before.epoch
    ));
    let at = subscribed_at(&client.frame().await, "feed:d");
    assert_eq!(at["recovered"], false);
    assert_ne!(at["epoch"], &*before.epoch);
    assert_eq!(at["offset"], 0);
}

#[actix_rt::test]
async fn a_latest_value_channel_sends_its_last_publication_on_subscribe() {
    let node = node(config(), Router::new());
    let mut plain = Client::start(&node);
    plain.subscribe("ticker:x").await; // nothing published yet: nothing more
    for price in ["10", "11", "12"] {
        node.publish("ticker:x", price).await.unwrap();
        assert_eq!(plain.frame().await, format!("channel ticker:x {price}"));
    }
    let mut late = Client::start(&node);
    late.send("subscribe ticker:x");
    assert_eq!(late.frame().await, "subscribed ticker:x");
    assert_eq!(late.frame().await, "channel ticker:x 12");
    let mut positioned = Client::start(&node);
    positioned.send(r#"subscribe ticker:x {"recover":true}"#);
    assert_eq!(
        subscribed_at(&positioned.frame().await, "ticker:x")["offset"],
        3
    );
    assert_eq!(positioned.frame().await, "pub ticker:x 3 12");
    node.publish("ticker:x", "13").await.unwrap();
    assert_eq!(late.frame().await, "channel ticker:x 13");
    assert_eq!(positioned.frame().await, "pub ticker:x 4 13");
}

#[actix_rt::test]
async fn history_requests_are_answered_like_actions() {
    let mut config = config();
    config.security.anonymous = true;
    config.security.namespaces.declare(
        "closed",
        Namespace::new()
            .history(5, Duration::from_secs(60))
            .subscribe(comet_actors::auth::SubscribeRule::None),
    );
    let node = node(config, Router::new());
    for n in 1..=7 {
        node.publish("feed:e", format!("m{n}")).await.unwrap();
    }
    let mut client = Client::start(&node);
    client.send(r#"history feed:e {"requestUid":"h1","since":4,"limit":2}"#);
    let answer = client.answer().await;
    assert_eq!(answer["requestUid"], "h1");
    assert_eq!(
        answer["publications"],
        serde_json::json!([{"offset":5,"payload":"m5"},{"offset":6,"payload":"m6"}])
    );
    assert_eq!(answer["offset"], 7);
    client.send(r#"history feed:e {"requestUid":"h2","limit":2}"#);
    let newest: Vec<u64> = client.answer().await["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(newest, [6, 7]);
    client.send(r#"history plain {"requestUid":"h3"}"#);
    assert_eq!(client.answer().await["error"]["code"], "not_found");
    client.send(r#"history closed:x {"requestUid":"h4"}"#);
    assert_eq!(client.answer().await["error"]["code"], "forbidden");
    client.send(r#"history feed:e {"requestUid":"h5","since":"x"}"#);
    assert_eq!(client.answer().await["error"]["code"], "bad_json");
    // Recovery where there is no history: refused, not silently plain.
    client.send(r#"subscribe plain {"recover":true}"#);
    let frame = client.frame().await;
    let Ok(ServerFrame::Error(body)) = parse_server_frame(&frame) else {
        panic!("expected an error, got {frame}");
    };
    assert_eq!(
        (body["code"].as_str(), body["channel"].as_str()),
        (Some("not_found"), Some("plain"))
    );
}

/// A memory hub whose history reads take their time: five more publications go out
/// while one is under way, so that the live stream and the past must be merged. Every
/// other read is taken before those five (they must come from the held live messages),
/// the others after (they are in the page, and the held copies must be dropped).
struct SlowHistory {
    inner: std::sync::Arc<MemoryHub>,
    published: tokio::sync::watch::Sender<u64>,
    reads: AtomicU64,
}

impl Hub for SlowHistory {
    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.start(sink)
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.publish(channel, payload)
    }

    fn publish_positioned(
        &self,
        keys: &HistoryKeys,
        payload: Bytes,
        policy: HistoryPolicy,
    ) -> BoxFuture<'static, Result<Position, HubError>> {
        self.published.send_modify(|n| *n += 1);
        self.inner.publish_positioned(keys, payload, policy)
    }

    fn history(
        &self,
        keys: &HistoryKeys,
        query: HistoryQuery,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<HistoryPage, HubError>> {
        let early = self.reads.fetch_add(1, Ordering::Relaxed).is_multiple_of(2);
        let snapshot = early.then(|| self.inner.history(keys, query, ttl));
        let (inner, keys) = (self.inner.clone(), keys.clone());
        let mut published = self.published.subscribe();
        let until = *published.borrow() + 5;
        Box::pin(async move {
            // Wait for five more publications (or the end of them).
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                published.wait_for(|n| *n >= until.min(2000)),
            )
            .await;
            match snapshot {
                Some(snapshot) => snapshot.await,
                // Read now: the live messages of the publications just made may still be
                // on their way to the registry.
                None => inner.history(&keys, query, ttl).await,
            }
        })
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.subscribe(channel)
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.unsubscribe(channel)
    }

    fn name(&self) -> &'static str {
        "slow-history"
    }
}

/// Publications keep coming while a client unsubscribes and resumes over and over: each
/// resumption must meet the live stream with no gap and no duplicate.
#[actix_rt::test]
async fn resuming_while_publications_keep_coming_loses_and_repeats_nothing() {
    let mut config = config();
    config.security.namespaces.declare(
        "stream",
        Namespace::new()
            .history(10_000, Duration::from_secs(60))
            .recover(true),
    );
    let hub = SlowHistory {
        inner: std::sync::Arc::new(MemoryHub::new()),
        published: tokio::sync::watch::channel(0).0,
        reads: AtomicU64::new(0),
    };
    let node = support::node_on(config, std::sync::Arc::new(hub), Router::new());
    // The publisher stays at most 500 ahead of what the client received (well within its
    // outbound queue), so that publications keep coming while it resumes.
    let (received, mut window) = tokio::sync::watch::channel(0u64);
    let publisher = {
        let node = node.clone();
        actix_rt::spawn(async move {
            for n in 1..=2000u64 {
                let _ = window.wait_for(|received| n <= received + 500).await;
                tokio::task::yield_now().await;
                node.publish("stream:x", n.to_string()).await.unwrap();
            }
        })
    };
    let mut client = Client::start(&node);
    client.send(r#"subscribe stream:x {"recover":true}"#);
    let mut epoch = String::new();
    // Offsets before the first subscribe are not the client's.
    let mut last = 0u64;
    let mut resumptions = 0;
    while last < 2000 {
        let frame = client.frame().await;
        if let Some(json) = frame.strip_prefix("subscribed stream:x ") {
            let at: Map<String, Value> = serde_json::from_str(json).unwrap();
            epoch = at["epoch"].as_str().unwrap().to_owned();
            match at.get("recovered") {
                Some(recovered) => assert_eq!(recovered, true),
                // The first, fresh subscribe: the stream starts after this position.
                None => {
                    last = at["offset"].as_u64().unwrap();
                    let _ = received.send(last);
                }
            }
            continue;
        }
        if frame == "unsubscribed stream:x" {
            client.send(&format!(
                r#"subscribe stream:x {{"recover":true,"offset":{last},"epoch":"{epoch}"}}"#
            ));
            resumptions += 1;
            continue;
        }
        let rest = frame
            .strip_prefix("pub stream:x ")
            .unwrap_or_else(|| panic!("{frame}"));
        let (offset, payload) = rest.split_once(' ').unwrap();
        let offset: u64 = offset.parse().unwrap();
        assert_eq!(offset, last + 1, "no gap, no duplicate");
        assert_eq!(payload, offset.to_string());
        last = offset;
        let _ = received.send(last);
        if last.is_multiple_of(97) && last < 1900 {
            client.send("unsubscribe stream:x");
        }
    }
    assert!(resumptions >= 10, "{resumptions}");
    publisher.await.unwrap();
}

/// A memory hub that loses the delivery (not the history entry) of the publications with
/// history that `lose` picks (by their count from 0), as pub/sub may around a reconnect;
/// with `fills` false, its history never answers the bridge's reads of a gap.
struct Lossy {
    inner: MemoryHub,
    count: AtomicU64,
    lose: fn(u64) -> bool,
    fills: bool,
}

impl Lossy {
    fn new(lose: fn(u64) -> bool, fills: bool) -> Lossy {
        Lossy {
            inner: MemoryHub::new(),
            count: AtomicU64::new(0),
            lose,
            fills,
        }
    }
}

impl Hub for Lossy {
    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.start(sink)
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.publish(channel, payload)
    }

    fn publish_positioned(
        &self,
        keys: &HistoryKeys,
        payload: Bytes,
        policy: HistoryPolicy,
    ) -> BoxFuture<'static, Result<Position, HubError>> {
        if (self.lose)(self.count.fetch_add(1, Ordering::Relaxed)) {
            // Stored, never delivered: a channel nobody listens to gets the message.
            let elsewhere = HistoryKeys {
                channel: format!("{}-lost", keys.channel),
                ..keys.clone()
            };
            return self.inner.publish_positioned(&elsewhere, payload, policy);
        }
        self.inner.publish_positioned(keys, payload, policy)
    }

    fn history(
        &self,
        keys: &HistoryKeys,
        query: HistoryQuery,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<HistoryPage, HubError>> {
        if !self.fills && query.since.is_some() {
            // The bridge filling a gap: no answer, ever.
            return Box::pin(futures::future::pending());
        }
        self.inner.history(keys, query, ttl)
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.subscribe(channel)
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.unsubscribe(channel)
    }

    fn name(&self) -> &'static str {
        "lossy"
    }
}

#[actix_rt::test]
async fn a_gap_in_the_live_stream_is_filled_from_history_before_what_follows() {
    // Every 7th delivery lost; the gaps can be read from history.
    let hub = Lossy::new(|n| n % 7 == 6, true);
    let mut config = config();
    config.security.namespaces.declare(
        "lossy",
        Namespace::new()
            .history(100, Duration::from_secs(60))
            .recover(true),
    );
    let node = support::node_on(config, std::sync::Arc::new(hub), Router::new());
    let mut positioned = Client::start(&node);
    positioned.send(r#"subscribe lossy:x {"recover":true}"#);
    subscribed_at(&positioned.frame().await, "lossy:x");
    let mut plain = Client::start(&node);
    plain.subscribe("lossy:x").await;
    for n in 1..=20u64 {
        node.publish("lossy:x", n.to_string()).await.unwrap();
    }
    // Offsets 7 and 14 were never delivered by the hub; both subscribers still get all 20,
    // in order: the bridge read them from history when 8 and 15 showed the gaps.
    for n in 1..=20u64 {
        assert_eq!(positioned.frame().await, format!("pub lossy:x {n} {n}"));
        assert_eq!(plain.frame().await, format!("channel lossy:x {n}"));
    }
}

#[actix_rt::test]
async fn a_gap_whose_fill_holds_too_much_is_announced_and_delivery_goes_on() {
    let mut config = config();
    config.limits.outbound_queue_bytes = 64 * 1024 * 1024;
    config.security.namespaces.declare(
        "big",
        Namespace::new()
            .history(100, Duration::from_secs(60))
            .recover(true),
    );
    // The second delivery lost, and the gap's read never answered.
    let hub = Lossy::new(|n| n == 1, false);
    let node = support::node_on(config, std::sync::Arc::new(hub), Router::new());
    let mut client = Client::start(&node);
    client.send(r#"subscribe big:x {"recover":true}"#);
    let epoch = subscribed_at(&client.frame().await, "big:x")["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    // 1 goes through, 2 is lost, then 10 of 1 MiB each: more than the 8 MiB held while
    // the (never answered) read of 2 is on its way.
    let mib = "x".repeat(1024 * 1024);
    node.publish("big:x", "1").await.unwrap();
    node.publish("big:x", "2").await.unwrap();
    for _ in 3..=12 {
        node.publish("big:x", mib.as_str()).await.unwrap();
    }
    assert_eq!(client.frame().await, "pub big:x 1 1");
    assert_eq!(
        client.frame().await,
        format!(r#"gap big:x {{"epoch":"{epoch}","offset":2}}"#)
    );
    for offset in 3..=12 {
        let frame = client.frame().await;
        assert!(
            frame.starts_with(&format!("pub big:x {offset} xxx")),
            "{offset}"
        );
    }
}
