//! The Redis Cluster hub itself against a cluster of the test's own, as `redis_hub.rs`
//! does for one Redis: `flush` resolves only once everything published before it went
//! out; while a master stalls, the publishes waiting for it are bounded in bytes, and one
//! refused at once still reaches this process's own subscribers; a burst of history
//! reads shares one connection.

#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
use comet::actors::hub::partitions::Partitions;
use comet::actors::hub::HubNames;
use comet::actors::{HubError, HubMessage};
use comet::{Hub, RedisClusterHub, RedisConfig};
use futures_util::FutureExt;
use redis_cluster::{slot_of, RedisCluster};

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

/// A started hub on `config` and what reaches its sink.
async fn started(
    config: &RedisConfig,
) -> (
    RedisClusterHub,
    tokio::sync::mpsc::UnboundedReceiver<HubMessage>,
) {
    let hub = RedisClusterHub::new(config, "t:").expect("valid seeds");
    let (sink, sunk) = tokio::sync::mpsc::unbounded_channel();
    hub.start(Collect(sink).start().recipient()).await.unwrap();
    (hub, sunk)
}

fn names() -> HubNames {
    HubNames::partitioned("t:", Partitions::new(16))
}

#[actix_web::test]
async fn a_flush_waits_for_every_earlier_publish_on_every_partition() {
    let cluster = RedisCluster::start(3);
    let config = RedisConfig::cluster(cluster.urls());
    let (publisher, _) = started(&config).await;
    let (listener, mut heard) = started(&config).await;
    let (other, _) = started(&config).await;
    publisher.flush().await.expect("nothing to wait for");
    // Channels on every master.
    let channels: Vec<String> = (0..12).map(|n| names().channel(&format!("c{n}"))).collect();
    for channel in &channels {
        listener.subscribe(channel).await.expect("subscribed");
    }
    let masters: std::collections::HashSet<usize> =
        channels.iter().map(|c| cluster.owner(slot_of(c))).collect();
    assert_eq!(masters.len(), 3, "the channels span the masters");
    // Many publishes, not awaited, then a flush; then a message through another hub on
    // each channel, as the queue sends an answer after flushing.
    for n in 0..600 {
        let channel = &channels[n % channels.len()];
        drop(publisher.publish(channel, Bytes::from(n.to_string())));
    }
    publisher.flush().await.expect("flushed");
    for channel in &channels {
        other
            .publish(channel, Bytes::from("end"))
            .await
            .expect("published");
    }
    let mut got: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut ends = 0;
    while ends < channels.len() {
        let message = tokio::time::timeout(Duration::from_secs(10), heard.recv())
            .await
            .expect("messages keep coming")
            .expect("the sink is alive");
        let payload = String::from_utf8_lossy(&message.payload).into_owned();
        ends += usize::from(payload == "end");
        got.entry(message.channel).or_default().push(payload);
    }
    for (i, channel) in channels.iter().enumerate() {
        let expected: Vec<String> = (0..600)
            .filter(|n| n % channels.len() == i)
            .map(|n| n.to_string())
            .chain(["end".to_owned()])
            .collect();
        assert_eq!(got[channel], expected, "{channel}");
    }
}

#[actix_web::test]
async fn a_stalled_master_holds_a_bounded_number_of_bytes_and_refused_publishes_reach_this_process()
{
    let cluster = RedisCluster::start(3);
    let mut config = RedisConfig::cluster(cluster.urls());
    // Nothing times out during the stall, no probe: only the byte bound may refuse.
    config.command_timeout = Duration::from_secs(60);
    config.probe_interval = Duration::from_secs(60);
    config.shards_interval = Duration::from_secs(60);
    config.publish_buffer_bytes = 256 * 1024;
    let (hub, mut sunk) = started(&config).await;
    let channel = names().channel("stall");
    hub.subscribe(&channel).await.unwrap();
    hub.publish(&channel, Bytes::from("warm")).await.unwrap();
    assert_eq!(sunk.recv().await.unwrap().payload, Bytes::from("warm"));

    let master = cluster.owner(slot_of(&channel));
    cluster.node(master).stop();
    // 64 KiB each: three fit in 256 KiB, the rest are refused at once and handed to
    // this process's own subscribers all the same.
    let payload = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut waiting = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let mut publish = hub.publish(&channel, payload.clone());
        match (&mut publish).now_or_never() {
            None => waiting.push(publish),
            Some(Err(HubError::Unavailable(why))) => {
                assert!(why.contains("publish_buffer_bytes"), "{why}");
                refused += 1;
            }
            Some(other) => panic!("a publish was answered while the master stalls: {other:?}"),
        }
    }
    assert_eq!((waiting.len(), refused), (3, 17));
    for _ in 0..17 {
        let handed = sunk.recv().await.expect("the sink is alive");
        assert_eq!(handed.payload.len(), 64 * 1024);
    }
    cluster.node(master).resume();
    for publish in waiting {
        publish
            .await
            .expect("a waiting publish goes out once the master is back");
    }
    // They come back through Redis, and the bytes are free again.
    for _ in 0..3 {
        assert_eq!(sunk.recv().await.unwrap().payload.len(), 64 * 1024);
    }
    hub.publish(&channel, payload.clone())
        .await
        .expect("room again after the stall");
}

#[actix_web::test]
async fn a_burst_of_history_reads_on_a_fresh_cluster_is_answered_whole() {
    use comet::actors::hub::history::{HistoryPolicy, HistoryQuery};
    let cluster = RedisCluster::start(3);
    let hub = RedisClusterHub::new(&RedisConfig::cluster(cluster.urls()), "t:").expect("a hub");
    let keys = names().history("feed:x");
    let ttl = Duration::from_secs(60);
    let query = HistoryQuery {
        since: Some(0),
        limit: 100,
    };
    let reads = (0..500).map(|_| hub.history(&keys, query, ttl));
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
    // Publishes with history to channels of every partition, in one batch: one script
    // per slot, positions in order per channel.
    let (sink, _sunk) = tokio::sync::mpsc::unbounded_channel();
    hub.start(Collect(sink).start().recipient()).await.unwrap();
    let policy = HistoryPolicy { size: 100, ttl };
    let mut publishes = Vec::new();
    for round in 0..5 {
        for n in 0..16 {
            let keys = names().history(&format!("feed:{n}"));
            publishes.push((
                n,
                round,
                hub.publish_positioned(&keys, Bytes::from("p"), policy),
            ));
        }
    }
    for (n, round, publish) in publishes {
        let position = publish.await.expect("published with history");
        assert_eq!(position.offset, round + 1, "feed:{n}");
    }
}
