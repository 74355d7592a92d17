//! Comet on a Redis Cluster of the test's own (see `common/redis_cluster.rs`): the harness
//! itself, and what only makes sense on a cluster.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/process.rs"]
mod process;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use comet::actors::hub::partitions::Partitions;
use comet::actors::hub::HubNames;
use eventually::eventually;
use process::Cometd;
use redis_cluster::{slot_of, RedisCluster};

const LONG: Duration = Duration::from_secs(15);

/// A `cometd` server on the cluster, without actions, probing every 200 ms.
fn server(name: &str, cluster: &RedisCluster, prefix: &str) -> Cometd {
    Cometd::spawn(
        name,
        &[
            "--role",
            "server",
            "--redis-cluster",
            &cluster.seeds(),
            "--prefix",
            prefix,
            "--listen-actions",
            "false",
        ],
    )
}

#[tokio::test]
async fn channel_messages_cross_processes_on_sharded_pub_sub() {
    let cluster = RedisCluster::start(3);
    let prefix = "sh:";
    let names = HubNames::partitioned(prefix, Partitions::new(16));
    let a = server("a", &cluster, prefix);
    let b = server("b", &cluster, prefix);
    let mut a1 = a.connect().await;
    let mut b1 = b.connect().await;
    let mut b2 = b.connect().await;
    a1.subscribe("test").await;
    b1.subscribe("test").await;
    b2.subscribe("test").await;
    // One sharded subscription per process, on the channel's master.
    let hub_channel = names.channel("test");
    assert_eq!(cluster.shard_numsub(&hub_channel), 2);
    b2.publish("test", "hello").await;
    assert!(a1.receives("test", "hello", LONG).await);
    assert!(b1.receives("test", "hello", LONG).await);
    assert!(b2.receives("test", "hello", LONG).await);
    // In order per channel, fired without waiting.
    for n in 0..50 {
        a1.publish("test", &format!("n{n}")).await;
    }
    for n in 0..50 {
        let frame = b1
            .expect("the next numbered message", LONG, |f| {
                f.starts_with("channel test n")
            })
            .await;
        assert_eq!(frame, format!("channel test n{n}"));
    }
    // Many channels, on every master.
    for n in 0..40 {
        a1.subscribe(&format!("c{n}")).await;
    }
    for n in 0..40 {
        b1.publish(&format!("c{n}"), "x").await;
    }
    for n in 0..40 {
        assert!(a1.receives(&format!("c{n}"), "x", LONG).await, "c{n}");
    }
    b1.unsubscribe("test").await;
    b2.unsubscribe("test").await;
    eventually("b leaves the channel", || async {
        cluster.shard_numsub(&hub_channel) == 1
    })
    .await;
    let all = cluster.shard_channels(&format!("{prefix}*"));
    assert!(all.contains(&hub_channel), "{all:?}");
    // Every partition's service channel is subscribed by both processes.
    for p in 0..16 {
        let service = format!("{prefix}{{{}}}shard", Partitions::new(16).tag(p));
        assert_eq!(cluster.shard_numsub(&service), 2, "{service}");
    }
}

#[test]
fn the_harness_makes_a_cluster_whose_slots_move() {
    let cluster = RedisCluster::start(3);
    let partitions = Partitions::new(16);
    // The partitions' slots spread over the three masters: 5 or 6 each.
    let mut owned = [0usize; 3];
    for p in 0..partitions.len() {
        owned[cluster.owner(partitions.slot(p))] += 1;
    }
    assert!(owned.iter().all(|&n| (5..=6).contains(&n)), "{owned:?}");
    // A key and a slot moved by hand.
    let key = format!("k{{{}}}", partitions.tag(0));
    let _: () = cluster.query_key(&key, redis::cmd("SET").arg(&key).arg("v"));
    let slot = slot_of(&key);
    let to = (cluster.owner(slot) + 1) % 3;
    cluster.migrate_slot(slot, to);
    let value: String = cluster.node(to).query(redis::cmd("GET").arg(&key));
    assert_eq!(value, "v");
}
