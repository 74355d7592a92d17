//! The Redis hub against a real Redis of the test's own: `flush` resolves only once
//! everything published before it reached Redis, so that a message sent afterwards by
//! another connection (as the Redis queue sends an action's answer) arrives after them;
//! while Redis stalls, the publishes waiting for it are bounded in bytes; after Redis
//! restarts, publishing resumes at once; a publish refused at once still reaches this
//! process's own subscribers (the hub hands it to its sink).

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/redis.rs"]
mod redis_server;

use std::sync::mpsc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
use comet::actors::{HubError, HubMessage};
use comet::{Hub, RedisConfig, RedisHub};
use eventually::eventually;
use futures_util::FutureExt;
use redis_server::RedisServer;

/// The hub's sink; this test hears the channel through a connection of its own.
struct Ignore;

impl Actor for Ignore {
    type Context = Context<Self>;
}

impl Handler<HubMessage> for Ignore {
    type Result = ();

    fn handle(&mut self, _: HubMessage, _: &mut Context<Self>) {}
}

#[actix_web::test]
async fn a_flush_waits_for_every_earlier_publish() {
    let redis = RedisServer::start();
    let hub = RedisHub::new(&RedisConfig::new(redis.url())).expect("a valid URL");
    hub.start(Ignore.start().recipient()).await.unwrap();
    // Nothing published: a flush answers at once.
    hub.flush().await.unwrap();

    // A listener of its own on the channel, in a thread (the sync client blocks).
    let (heard, hearing) = mpsc::channel();
    let (subscribed, ready) = mpsc::channel();
    let mut connection = redis.connection();
    std::thread::spawn(move || {
        let mut pubsub = connection.as_pubsub();
        pubsub.subscribe("flush:c").expect("SUBSCRIBE");
        let _ = subscribed.send(());
        loop {
            let Ok(message) = pubsub.get_message() else {
                break;
            };
            let payload: String = message.get_payload().unwrap_or_default();
            let end = payload == "end";
            if heard.send(payload).is_err() || end {
                break;
            }
        }
    });
    ready.recv_timeout(Duration::from_secs(10)).unwrap();

    // Many publishes, not awaited (each is queued when called), then a flush; then a
    // message through another connection, as the queue's script sends an answer.
    for n in 0..500 {
        drop(hub.publish("flush:c", Bytes::from(n.to_string())));
    }
    hub.flush().await.unwrap();
    let _: i64 = redis.query(redis::cmd("PUBLISH").arg("flush:c").arg("end"));

    let mut got = Vec::new();
    while let Ok(payload) = hearing.recv_timeout(Duration::from_secs(10)) {
        let end = payload == "end";
        got.push(payload);
        if end {
            break;
        }
    }
    let expected: Vec<String> = (0..500)
        .map(|n| n.to_string())
        .chain(["end".to_owned()])
        .collect();
    assert_eq!(got, expected);
}

/// A started hub on `config`.
async fn started(config: &RedisConfig) -> RedisHub {
    let hub = RedisHub::new(config).expect("a valid URL");
    hub.start(Ignore.start().recipient()).await.unwrap();
    hub
}

#[actix_web::test]
async fn a_stalled_redis_holds_a_bounded_number_of_bytes_and_frees_them_when_back() {
    let redis = RedisServer::start();
    let mut config = RedisConfig::new(redis.url());
    // Nothing times out during the stall: only the byte bound may refuse publishes.
    config.command_timeout = Duration::from_secs(60);
    config.publish_buffer_bytes = 256 * 1024;
    let hub = started(&config).await;
    hub.publish("stall:c", Bytes::from("warm")).await.unwrap();

    redis.stop();
    // 64 KiB (and a 7-byte channel name) each: three fit in 256 KiB, the rest are refused
    // at once; nothing waits for the stall to end to learn it.
    let payload = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut waiting = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let mut publish = hub.publish("stall:c", payload.clone());
        match (&mut publish).now_or_never() {
            None => waiting.push(publish),
            Some(Err(HubError::Unavailable(why))) => {
                assert!(why.contains("publish_buffer_bytes"), "{why}");
                refused += 1;
            }
            Some(other) => panic!("a publish was answered while Redis is stalled: {other:?}"),
        }
    }
    assert_eq!((waiting.len(), refused), (3, 17));

    redis.resume();
    for publish in waiting {
        publish
            .await
            .expect("a waiting publish goes out once Redis is back");
    }
    // The bytes were freed as Redis answered: as many fit again, and go out.
    for _ in 0..3 {
        let publish = hub.publish("stall:c", payload.clone());
        publish.await.expect("room again after the stall");
    }
}

#[actix_web::test]
async fn a_connection_broken_while_idle_is_replaced_without_failing_a_publish() {
    let mut redis = RedisServer::start();
    let hub = started(&RedisConfig::new(redis.url())).await;
    hub.publish("idle:c", Bytes::from("before")).await.unwrap();
    // Redis restarts while nobody publishes: the publisher's connection is dead, which it
    // finds out only on the next publish.
    redis.restart();
    hub.publish("idle:c", Bytes::from("after"))
        .await
        .expect("the first publish after Redis is back goes out on a fresh connection");
}

#[actix_web::test]
async fn publishing_resumes_soon_after_a_long_outage() {
    let mut redis = RedisServer::start();
    let hub = started(&RedisConfig::new(redis.url())).await;
    hub.publish("outage:c", Bytes::from("before"))
        .await
        .unwrap();
    redis.kill();
    // A long outage, counted in the publisher's tries rather than in seconds: something
    // takes Redis' port and drops every connection, so each try of the publisher is an
    // accepted connection here. Twenty failed tries in a row: enough for an exponential
    // backoff to reach seconds between tries.
    let port = tokio::net::TcpListener::bind(("127.0.0.1", redis.port()))
        .await
        .expect("Redis' port is free while it is down");
    let tries = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let counting = tries.clone();
    let refusing = actix_web::rt::spawn(async move {
        while let Ok((connection, _)) = port.accept().await {
            counting.set(counting.get() + 1);
            drop(connection);
        }
    });
    let mut n = 0;
    eventually("the publisher tried 20 times", || {
        n += 1;
        let publish = hub.publish("outage:c", Bytes::from(format!("down-{n}")));
        let tries = tries.clone();
        async move {
            assert!(
                matches!(publish.await, Err(HubError::Unavailable(_))),
                "a publish succeeded with Redis down"
            );
            tries.get() >= 20
        }
    })
    .await;
    refusing.abort();
    let _ = refusing.await;
    redis.restart();
    // Redis answers again: the publisher tries again within `reconnect_min` (100 ms)
    // after its last failure, as at the start of the outage, and the publishes go out.
    eventually("publishing resumes", || async {
        hub.publish("outage:c", Bytes::from("back")).await.is_ok()
    })
    .await;
}

/// The hub's sink, passing on what it gets.
struct Collect(tokio::sync::mpsc::UnboundedSender<HubMessage>);

impl Actor for Collect {
    type Context = Context<Self>;
}

impl Handler<HubMessage> for Collect {
    type Result = ();

    fn handle(&mut self, message: HubMessage, _: &mut Context<Self>) {
        let _ = self.0.send(message);
    }
}

#[actix_web::test]
async fn a_publish_refused_at_once_still_reaches_this_processs_own_subscribers() {
    let redis = RedisServer::start();
    let mut config = RedisConfig::new(redis.url());
    config.command_timeout = Duration::from_secs(60);
    config.publish_buffer_bytes = 1024;
    let hub = RedisHub::new(&config).expect("a valid URL");
    let (sink, mut sunk) = tokio::sync::mpsc::unbounded_channel();
    hub.start(Collect(sink).start().recipient()).await.unwrap();
    hub.subscribe("refused:c").await.unwrap();
    hub.publish("refused:c", Bytes::from("warm")).await.unwrap();
    let warm = sunk.recv().await.expect("the sink is alive");
    assert_eq!(warm.payload, Bytes::from("warm"));

    // Redis stalls: one publish waits, the next is refused at once and handed to the
    // sink (this process's subscribers) all the same.
    redis.stop();
    let waiting = hub.publish("refused:c", Bytes::from(vec![b'w'; 1000]));
    let refused = hub.publish("refused:c", Bytes::from("refused"));
    assert!(matches!(refused.await, Err(HubError::Unavailable(_))));
    let handed = sunk.recv().await.expect("the sink is alive");
    assert_eq!(
        (handed.channel.as_str(), handed.payload),
        ("refused:c", Bytes::from("refused"))
    );
    redis.resume();
    waiting.await.expect("the waiting publish goes out");
    // It comes back through Redis.
    let back = sunk.recv().await.expect("the sink is alive");
    assert_eq!(back.payload.len(), 1000);
}

#[actix_web::test]
async fn a_burst_of_history_reads_on_a_fresh_redis_is_answered_whole() {
    use comet::actors::hub::history::{HistoryPolicy, HistoryQuery};
    use comet::actors::hub::HubNames;
    let redis = RedisServer::start();
    let hub = RedisHub::new(&RedisConfig::new(redis.url())).expect("a hub");
    let keys = HubNames::new("burst:").history("feed:x");
    let policy = HistoryPolicy {
        size: 100,
        ttl: Duration::from_secs(60),
    };
    let query = HistoryQuery {
        since: Some(0),
        limit: 100,
    };
    // 500 reads at once, before any connection or script exists: each opens nothing of
    // its own, all share the one connection the first opens.
    let reads = (0..500).map(|_| hub.history(&keys, query, policy.ttl));
    let pages = futures_util::future::join_all(reads).await;
    let failed: Vec<String> = pages
        .iter()
        .filter_map(|page| page.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let epochs: std::collections::HashSet<_> = pages
        .into_iter()
        .map(|page| page.unwrap().position.epoch)
        .collect();
    assert_eq!(epochs.len(), 1, "one epoch for the channel");
}
