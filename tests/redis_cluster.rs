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

/// A `cometd` server on the cluster, without actions, with `extra` flags.
fn server(name: &str, cluster: &RedisCluster, prefix: &str, extra: &[&str]) -> Cometd {
    let seeds = cluster.seeds();
    let mut args = vec![
        "--role",
        "server",
        "--redis-cluster",
        &seeds,
        "--prefix",
        prefix,
        "--listen-actions",
        "false",
    ];
    args.extend_from_slice(extra);
    Cometd::spawn(name, &args)
}

/// A server that probes its partitions every 200 ms.
fn probing_server(name: &str, cluster: &RedisCluster, prefix: &str) -> Cometd {
    server(name, cluster, prefix, &["--redis-probe-ms", "200"])
}

// What every test of `tests/cluster.rs` checks on a cluster too (`name::cluster`) is not
// repeated here; this is what only a cluster has.

#[tokio::test]
async fn every_partition_is_subscribed_once_per_process_on_its_master() {
    let cluster = RedisCluster::start(3);
    let prefix = "sh:";
    let partitions = Partitions::new(16);
    let names = HubNames::partitioned(prefix, partitions.clone());
    let a = server("a", &cluster, prefix, &[]);
    let b = server("b", &cluster, prefix, &[]);
    let mut a1 = a.connect().await;
    let mut b1 = b.connect().await;
    // Channels of every partition, on every master, each subscribed once per process.
    for n in 0..40 {
        a1.subscribe(&format!("c{n}")).await;
        b1.subscribe(&format!("c{n}")).await;
    }
    let masters: std::collections::HashSet<usize> = (0..40)
        .map(|n| cluster.owner(slot_of(&names.channel(&format!("c{n}")))))
        .collect();
    assert_eq!(masters.len(), 3);
    for n in 0..40 {
        b1.publish(&format!("c{n}"), "x").await;
    }
    for n in 0..40 {
        assert!(a1.receives(&format!("c{n}"), "x", LONG).await, "c{n}");
        assert_eq!(cluster.shard_numsub(&names.channel(&format!("c{n}"))), 2);
    }
    // Every partition's service channel is subscribed by both processes.
    for p in 0..partitions.len() {
        let service = format!("{prefix}{{{}}}shard", partitions.tag(p));
        assert_eq!(cluster.shard_numsub(&service), 2, "{service}");
    }
    // Nothing of the processes is a classic (unsharded) subscription.
    let classic: Vec<String> = cluster.on_masters(|node| {
        node.query::<Vec<String>>(
            redis::cmd("PUBSUB")
                .arg("CHANNELS")
                .arg(format!("{prefix}*")),
        )
    });
    assert_eq!(classic, Vec::<String>::new());
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

/// Messages published on `channel` by a client of `publisher`, numbered from 0, every
/// 5 ms, until the returned sender says stop; the last number sent is readable anytime.
struct Flow {
    stop: tokio::sync::oneshot::Sender<()>,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Flow {
    async fn start(publisher: &Cometd, channel: &str) -> Flow {
        let mut client = publisher.connect().await;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        let channel = channel.to_owned();
        let task = tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(5));
            for n in 1.. {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = pace.tick() => {
                        client.publish(&channel, &format!("m{n}")).await;
                        counter.store(n, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
        });
        Flow { stop, sent, task }
    }

    fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn end(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Waits until `client` receives a message of the flow numbered above `after`.
async fn resumes(client: &mut process::Client, channel: &str, after: u64) -> u64 {
    let prefix = format!("channel {channel} m");
    loop {
        let frame = client
            .expect("a message of the flow", LONG, |f| f.starts_with(&prefix))
            .await;
        let n: u64 = frame[prefix.len()..].parse().expect("a numbered message");
        if n > after {
            return n;
        }
    }
}

/// Two processes probing every 200 ms, a client of `b` on channel `busy` and a flow of
/// messages to it from a client of `a`, already arriving.
struct Busy {
    _a: Cometd,
    b: Cometd,
    b1: process::Client,
    flow: Flow,
    /// The hub channel of `busy`.
    channel: String,
}

impl Busy {
    async fn start(cluster: &RedisCluster, prefix: &str) -> Busy {
        let a = probing_server("a", cluster, prefix);
        let b = probing_server("b", cluster, prefix);
        let mut b1 = b.connect().await;
        b1.subscribe("busy").await;
        let flow = Flow::start(&a, "busy").await;
        resumes(&mut b1, "busy", 0).await;
        let channel = HubNames::partitioned(prefix, Partitions::new(16)).channel("busy");
        Busy {
            _a: a,
            b,
            b1,
            flow,
            channel,
        }
    }

    /// The master of the channel's slot now.
    fn master(&self, cluster: &RedisCluster) -> usize {
        cluster.owner(slot_of(&self.channel))
    }

    /// Does `change` to the cluster (in a thread of its own) while the messages flow,
    /// then waits until b1 gets a message sent after it; answers the cluster.
    async fn through(
        &mut self,
        cluster: RedisCluster,
        change: impl FnOnce(&mut RedisCluster) + Send + 'static,
    ) -> RedisCluster {
        let cluster = tokio::task::spawn_blocking(move || {
            let mut cluster = cluster;
            change(&mut cluster);
            cluster
        })
        .await
        .expect("the change to the cluster ran");
        let after = self.flow.sent();
        resumes(&mut self.b1, "busy", after).await;
        cluster
    }

    /// b's subscription is on the channel's master now, moved there when Redis itself
    /// said the slot left (not found out by the probe or the periodic look).
    async fn followed(&self, cluster: &RedisCluster) {
        eventually("b subscribed on the channel's master", || async {
            cluster.shard_numsub(&self.channel) == 1
        })
        .await;
        let logged = self.b.logged();
        assert!(
            logged.contains("Redis unsubscribed the service channel"),
            "{logged}"
        );
    }
}

#[tokio::test]
async fn delivery_resumes_after_a_busy_partition_s_slot_migrates() {
    let cluster = RedisCluster::start(3);
    let mut busy = Busy::start(&cluster, "mig:").await;
    let slot = slot_of(&busy.channel);
    let to = (busy.master(&cluster) + 1) % 3;
    let cluster = busy
        .through(cluster, move |cluster| cluster.migrate_slot(slot, to))
        .await;
    assert_eq!(busy.master(&cluster), to);
    busy.followed(&cluster).await;
    // And stays there: what follows arrives in order, none lost.
    let from = resumes(&mut busy.b1, "busy", busy.flow.sent()).await;
    for n in from + 1..from + 20 {
        let frame = busy
            .b1
            .expect("the next message", LONG, |f| {
                f.starts_with("channel busy m")
            })
            .await;
        assert_eq!(frame, format!("channel busy m{n}"));
    }
    busy.flow.end().await;
}

#[tokio::test]
async fn delivery_resumes_after_a_master_is_killed_and_restarted() {
    let cluster = RedisCluster::start(3);
    let mut busy = Busy::start(&cluster, "kill:").await;
    let master = busy.master(&cluster);
    let cluster = busy
        .through(cluster, move |cluster| {
            cluster.kill(master);
            cluster.restart(master);
        })
        .await;
    assert_eq!(cluster.shard_numsub(&busy.channel), 1);
    busy.flow.end().await;
}

#[tokio::test]
async fn delivery_resumes_after_a_failover() {
    let cluster = RedisCluster::start_with_replicas(3, 1);
    let mut busy = Busy::start(&cluster, "fo:").await;
    let replica = cluster.replica_of(busy.master(&cluster));
    let cluster = busy
        .through(cluster, move |cluster| cluster.failover(replica))
        .await;
    assert_eq!(busy.master(&cluster), replica);
    busy.followed(&cluster).await;
    busy.flow.end().await;
}

#[tokio::test]
async fn a_hung_master_is_found_out_by_the_probe() {
    let cluster = RedisCluster::start(3);
    let mut busy = Busy::start(&cluster, "hung:").await;
    let master = busy.master(&cluster);
    // The master hangs (SIGSTOP): its sockets stay open, nothing says a word.
    cluster.node(master).stop();
    eventually("b's probe finds the master hung", || async {
        busy.b
            .logged()
            .lines()
            .any(|line| line.contains(" leaves ") && line.contains("probe"))
    })
    .await;
    cluster.node(master).resume();
    let after = busy.flow.sent();
    resumes(&mut busy.b1, "busy", after).await;
    busy.flow.end().await;
}

/// A server that says it is Redis 6.2 in cluster mode: answers `INFO` so, `+OK` to
/// anything else (what a client sends on connecting).
fn old_redis() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("a clone of the socket");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                // Each command: `*N`, then N times `$len` and the argument.
                while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                    let count: usize = line.trim().trim_start_matches('*').parse().unwrap_or(0);
                    let mut args = Vec::new();
                    for _ in 0..count * 2 {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        args.push(line.trim().to_owned());
                    }
                    line.clear();
                    let answer = if args.get(1).is_some_and(|c| c.eq_ignore_ascii_case("info")) {
                        let info = "# Server\r\nredis_version:6.2.14\r\n# Cluster\r\ncluster_enabled:1\r\n";
                        format!("${}\r\n{info}\r\n", info.len())
                    } else {
                        "+OK\r\n".to_owned()
                    };
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_redis_older_than_7_or_not_a_cluster_is_refused_clearly() {
    let port = old_redis();
    let seed = format!("redis://127.0.0.1:{port}/");
    let exit = process::run_to_exit(&["--redis-cluster", &seed, "--bind", "127.0.0.1:0"], LONG);
    assert!(!exit.status.success(), "{}", exit.stdout);
    assert!(
        exit.stderr
            .contains("runs Redis 6.2.14; comet on a Redis Cluster needs Redis 7.0 or later"),
        "{}",
        exit.stderr
    );
    let single = redis_server::RedisServer::start();
    let exit = process::run_to_exit(
        &["--redis-cluster", &single.url(), "--bind", "127.0.0.1:0"],
        LONG,
    );
    assert!(!exit.status.success());
    assert!(
        exit.stderr.contains("is not a Redis Cluster node"),
        "{}",
        exit.stderr
    );
    let exit = process::run_to_exit(
        &["--redis-cluster", &single.url(), "--redis", &single.url()],
        LONG,
    );
    assert!(exit.stderr.contains("not both"), "{}", exit.stderr);
}
