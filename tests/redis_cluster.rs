//! Comet on a Redis Cluster of the test's own (see `common/redis_cluster.rs`): the harness
//! itself, and what only makes sense on a cluster.

#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;

use comet::actors::hub::partitions::Partitions;
use redis_cluster::{slot_of, RedisCluster};

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
