//! A Redis Cluster of a test's own: `redis-server` nodes on free ports (never the
//! machine's 6379), each with a fresh `nodes.conf`, joined with `redis-cli --cluster
//! create`; nodes killed (as by a crash) and started again with their `nodes.conf`, slots
//! migrated by hand, replicas promoted. Everything is killed and removed when dropped.
//!
//! Included with `#[path]` beside `redis.rs` (whose `free_port` it uses).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::redis_server::{free_port, launch, Running};

/// One node of a test cluster.
pub struct ClusterNode {
    port: u16,
    bus: u16,
    dir: PathBuf,
    child: Running,
}

impl ClusterNode {
    /// A node on free ports, not started.
    fn new() -> ClusterNode {
        let port = free_port();
        let mut bus = free_port();
        while bus == port {
            bus = free_port();
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-cluster-{port}"));
        // A reused nodes.conf makes `--cluster create` fail: always a fresh directory.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot make the Redis node's directory");
        ClusterNode {
            port,
            bus,
            dir,
            child: Running::default(),
        }
    }

    /// Starts `redis-server` in cluster mode; false if it did not come up.
    fn launch(&mut self) -> bool {
        let conf = self.dir.join("nodes.conf").to_string_lossy().into_owned();
        let dir = self.dir.to_string_lossy().into_owned();
        self.child = Running::new(launch(&[
            "--port",
            &self.port.to_string(),
            "--cluster-port",
            &self.bus.to_string(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &conf,
            "--cluster-node-timeout",
            "2000",
            "--cluster-require-full-coverage",
            "no",
            "--dir",
            &dir,
        ]));
        self.child.is_running()
    }

    /// The node's client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the node at once (SIGKILL); its `nodes.conf` stays, so it can come back.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Freezes the node (SIGSTOP): connections stay open, nothing is answered until
    /// [`resume`](Self::resume).
    pub fn stop(&self) {
        self.child.stop();
    }

    /// Lets a stopped node run again (SIGCONT).
    pub fn resume(&self) {
        self.child.resume();
    }

    /// A fresh connection to this node alone (no redirections followed).
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("cannot connect to the test cluster's node")
    }

    /// Runs one command on this node and reads its answer as `T`.
    pub fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> T {
        command
            .query(&mut self.connection())
            .unwrap_or_else(|err| panic!("a command on node {} failed: {err}", self.port))
    }

    /// This node's id in the cluster.
    pub fn id(&self) -> String {
        self.query(redis::cmd("CLUSTER").arg("MYID"))
    }

    fn cluster_info(&self) -> Option<String> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut connection = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut connection)
            .ok()
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of the test's own.
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
}

impl RedisCluster {
    /// A cluster of `masters` masters and no replicas, every slot covered, `cluster_state:ok`
    /// on every node.
    pub fn start(masters: usize) -> RedisCluster {
        RedisCluster::start_with_replicas(masters, 0)
    }

    /// A cluster of `masters` masters with `replicas` replicas each.
    pub fn start_with_replicas(masters: usize, replicas: usize) -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            let mut started = None;
            for _ in 0..5 {
                let mut node = ClusterNode::new();
                if node.launch() {
                    started = Some(node);
                    break;
                }
            }
            nodes.push(started.expect("could not start a cluster node after 5 tries"));
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(nodes.iter().map(ClusterNode::addr))
            .args(["--cluster-replicas", &replicas.to_string()])
            .arg("--cluster-yes")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("cannot run redis-cli (it comes with redis-server)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        if replicas > 0 {
            cluster.wait_replicated(replicas, masters * replicas);
        }
        cluster
    }

    /// Waits until every master has `replicas` replicas connected and every node knows
    /// all `total` replicas as such (replication and gossip settle after create; a
    /// failover needs both).
    fn wait_replicated(&self, replicas: usize, total: usize) {
        let wanted = format!("connected_slaves:{replicas}");
        poll_until("the test cluster's replicas connect", || {
            self.nodes.iter().all(|node| {
                let info: String = node.query(redis::cmd("INFO").arg("replication"));
                let nodes: String = node.query(redis::cmd("CLUSTER").arg("NODES"));
                let known = nodes
                    .lines()
                    .filter(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("slave")))
                    .count();
                (info.contains("role:slave") || info.contains(&wanted)) && known == total
            })
        });
    }

    /// Waits until every running node says `cluster_state:ok` and knows every other one
    /// (about 2 s after create; a state in Redis with no event to wait on).
    pub fn wait_ok(&self) {
        poll_until("the test cluster reaches cluster_state:ok", || {
            let known = self.nodes.iter().filter(|n| n.child.is_running()).count();
            known > 0
                && self
                    .nodes
                    .iter()
                    .filter(|n| n.child.is_running())
                    .all(|node| {
                        node.cluster_info().is_some_and(|info| {
                            info.contains("cluster_state:ok")
                                && info
                                    .contains(&format!("cluster_known_nodes:{}", self.nodes.len()))
                        })
                    })
        });
    }

    /// The seed URLs, comma-separated, for `--redis-cluster`.
    pub fn seeds(&self) -> String {
        self.urls().join(",")
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ClusterNode::url).collect()
    }

    /// Node `i` (in the order started; the first `masters` are the masters at first).
    pub fn node(&self, i: usize) -> &ClusterNode {
        &self.nodes[i]
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The index of the node that serves `slot` now, as the running nodes see it.
    pub fn owner(&self, slot: u16) -> usize {
        let node = self
            .nodes
            .iter()
            .find(|n| n.child.is_running())
            .expect("no node of the test cluster runs");
        let nodes: String = node.query(redis::cmd("CLUSTER").arg("NODES"));
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let owns = fields[8..].iter().any(|range| {
                let mut bounds = range.split('-').map(|b| b.parse::<u16>());
                match (bounds.next(), bounds.next()) {
                    (Some(Ok(from)), Some(Ok(to))) => (from..=to).contains(&slot),
                    (Some(Ok(only)), None) => only == slot,
                    _ => false,
                }
            });
            if owns {
                let port = fields[1]
                    .split(['@', ':'])
                    .nth(1)
                    .and_then(|p| p.parse::<u16>().ok());
                if let Some(i) = self.nodes.iter().position(|n| Some(n.port) == port) {
                    return i;
                }
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// Sends `command` to the node that serves `key`'s slot.
    pub fn query_key<T: redis::FromRedisValue>(&self, key: &str, command: &redis::Cmd) -> T {
        self.nodes[self.owner(slot_of(key))].query(command)
    }

    /// `PUBSUB SHARDNUMSUB channel` on the channel's node.
    pub fn shard_numsub(&self, channel: &str) -> i64 {
        let (_, count): (String, i64) = self.query_key(
            channel,
            redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel),
        );
        count
    }

    /// `PUBSUB SHARDCHANNELS pattern` on every master, together.
    pub fn shard_channels(&self, pattern: &str) -> Vec<String> {
        let mut all = self.on_masters(|node| {
            node.query::<Vec<String>>(redis::cmd("PUBSUB").arg("SHARDCHANNELS").arg(pattern))
        });
        all.sort();
        all
    }

    /// Moves `slot` from its master to node `to`, keys and all, as `redis-cli --cluster
    /// reshard` does: `SETSLOT … IMPORTING` / `MIGRATING`, `MIGRATE` of every key, then
    /// `SETSLOT … NODE` on both and on every other master.
    pub fn migrate_slot(&self, slot: u16, to: usize) {
        let from = self.owner(slot);
        assert_ne!(from, to, "slot {slot} is already on node {to}");
        let (source, target) = (&self.nodes[from], &self.nodes[to]);
        let (source_id, target_id) = (source.id(), target.id());
        let _: () = target.query(
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("IMPORTING")
                .arg(&source_id),
        );
        let _: () = source.query(
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("MIGRATING")
                .arg(&target_id),
        );
        loop {
            let keys: Vec<String> = source.query(
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(100),
            );
            if keys.is_empty() {
                break;
            }
            let _: () = source.query(
                redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(target.port)
                    .arg("")
                    .arg(0)
                    .arg(5000)
                    .arg("KEYS")
                    .arg(&keys),
            );
        }
        for node in [target, source]
            .into_iter()
            .chain(self.nodes.iter().filter(|n| n.child.is_running()))
        {
            let _: redis::RedisResult<()> = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&target_id)
                .query(&mut node.connection());
        }
        assert_eq!(self.owner(slot), to, "slot {slot} did not move");
    }

    /// Runs `each` on every running master and gathers what it answers.
    pub fn on_masters<T>(&self, each: impl Fn(&ClusterNode) -> Vec<T>) -> Vec<T> {
        let mut all = Vec::new();
        for node in self.nodes.iter().filter(|n| n.child.is_running()) {
            let role: Vec<redis::Value> = node.query(&redis::cmd("ROLE"));
            if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
                all.append(&mut each(node));
            }
        }
        all
    }

    /// Kills every node (SIGKILL).
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Starts every node again with its `nodes.conf` (same ids and slots, no data) and
    /// waits for the cluster to be whole.
    pub fn restart_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
            let mut up = false;
            for _ in 0..20 {
                if node.launch() {
                    up = true;
                    break;
                }
            }
            assert!(up, "node {} did not come back", node.port);
        }
        self.wait_ok();
    }

    /// Kills node `i` (SIGKILL), as a crash would.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again with its `nodes.conf` (same id, same slots, no data) and
    /// waits for the cluster to be whole again.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].kill();
        let mut up = false;
        for _ in 0..20 {
            if self.nodes[i].launch() {
                up = true;
                break;
            }
        }
        assert!(up, "node {} did not come back", self.nodes[i].port);
        self.wait_ok();
    }

    /// Promotes replica `i` with `CLUSTER FAILOVER` and waits until it is a master (a
    /// manual failover that times out, as one may while the replica catches up, is asked
    /// for again).
    pub fn failover(&self, i: usize) {
        let mut asked: Option<Instant> = None;
        poll_until("the failover happens", || {
            if asked.is_none_or(|at| at.elapsed() > Duration::from_secs(5)) {
                let _: () = self.nodes[i].query(redis::cmd("CLUSTER").arg("FAILOVER"));
                asked = Some(Instant::now());
            }
            let role: Vec<redis::Value> = self.nodes[i].query(&redis::cmd("ROLE"));
            matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
        });
        self.wait_ok();
    }

    /// The index of the replica of master `i` (from its replication links).
    pub fn replica_of(&self, i: usize) -> usize {
        let info: String = self.nodes[i].query(redis::cmd("INFO").arg("replication"));
        let port = info
            .lines()
            .find(|line| line.starts_with("slave0:"))
            .and_then(|line| line.split(',').find_map(|kv| kv.strip_prefix("port=")))
            .and_then(|p| p.parse::<u16>().ok());
        self.nodes
            .iter()
            .position(|n| Some(n.port) == port)
            .expect("the replica is not one of the test's nodes")
    }
}

/// Waits until `check` holds, asking every 50 ms, and fails the test with `what` after
/// 30 s: the harness's one wait for a state of Redis that no event announces (the
/// cluster formed, replication and gossip settled, a failover done; the tests' own
/// waits are `eventually`'s).
fn poll_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The slot of `key` (CRC16 of its hash tag), as `CLUSTER KEYSLOT` says.
pub fn slot_of(key: &str) -> u16 {
    comet::actors::hub::partitions::slot(key.as_bytes())
}
