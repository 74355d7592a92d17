//! The Redis a test runs on: one `redis-server` of its own, or a Redis Cluster of three
//! masters of its own, as `COMET_TEST_REDIS` says: `single`, `cluster`, or `both` (the
//! default; `scripts/test` runs both). A test written once against [`TestRedis`] runs as
//! one test per mode: `redis_tests!(name, …)` makes `name::single` and `name::cluster`,
//! each calling `name(TestRedis)`.
//!
//! Included with `#[path]` beside `redis.rs` and `redis_cluster.rs`.

#![allow(dead_code)]

use comet::actors::hub::partitions::Partitions;
use comet::actors::hub::HubNames;
use comet::RedisConfig;

use super::redis_cluster::RedisCluster;
use super::redis_server::RedisServer;

/// One Redis, or a Redis Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `redis-server` (`--redis`).
    Single,
    /// Three masters (`--redis-cluster`).
    Cluster,
}

impl Mode {
    /// Whether `COMET_TEST_REDIS` asks for this mode (unset: both).
    pub fn wanted(self) -> bool {
        match std::env::var("COMET_TEST_REDIS").as_deref() {
            Ok("single") => self == Mode::Single,
            Ok("cluster") => self == Mode::Cluster,
            Ok("both") | Ok("") | Err(_) => true,
            Ok(other) => panic!("COMET_TEST_REDIS is `single`, `cluster` or `both`, not `{other}`"),
        }
    }
}

/// A test's own Redis, of either mode.
pub enum TestRedis {
    /// One Redis.
    Single(RedisServer),
    /// A Redis Cluster.
    Cluster(RedisCluster),
}

impl TestRedis {
    /// Starts a Redis of this mode.
    pub fn start(mode: Mode) -> TestRedis {
        match mode {
            Mode::Single => TestRedis::Single(RedisServer::start()),
            Mode::Cluster => TestRedis::Cluster(RedisCluster::start(3)),
        }
    }

    /// Which mode.
    pub fn mode(&self) -> Mode {
        match self {
            TestRedis::Single(_) => Mode::Single,
            TestRedis::Cluster(_) => Mode::Cluster,
        }
    }

    /// The `cometd` flags that put a process on it.
    pub fn args(&self) -> Vec<String> {
        match self {
            TestRedis::Single(redis) => vec!["--redis".into(), redis.url()],
            TestRedis::Cluster(cluster) => vec!["--redis-cluster".into(), cluster.seeds()],
        }
    }

    /// The configuration of a hub or queue on it.
    pub fn config(&self) -> RedisConfig {
        match self {
            TestRedis::Single(redis) => RedisConfig::new(redis.url()),
            TestRedis::Cluster(cluster) => RedisConfig::cluster(cluster.urls()),
        }
    }

    /// A builder with its hub and queue on this Redis.
    pub fn on(&self, builder: comet::CometBuilder) -> comet::CometBuilder {
        match self {
            TestRedis::Single(redis) => builder.redis(redis.url()),
            TestRedis::Cluster(cluster) => builder.redis_cluster(cluster.urls()),
        }
        .expect("valid Redis URLs")
    }

    /// How comet names things in it under `prefix` (default partitions on a cluster).
    pub fn names(&self, prefix: &str) -> HubNames {
        match self {
            TestRedis::Single(_) => HubNames::new(prefix),
            TestRedis::Cluster(_) => HubNames::partitioned(prefix, Partitions::new(16)),
        }
    }

    /// How many connections (here, processes) are subscribed to a hub channel:
    /// `PUBSUB NUMSUB`, or `PUBSUB SHARDNUMSUB` on the channel's master.
    pub fn numsub(&self, channel: &str) -> i64 {
        match self {
            TestRedis::Single(redis) => {
                let (_, count): (String, i64) =
                    redis.query(redis::cmd("PUBSUB").arg("NUMSUB").arg(channel));
                count
            }
            TestRedis::Cluster(cluster) => cluster.shard_numsub(channel),
        }
    }

    /// The hub channels subscribed that match `pattern`, sorted: `PUBSUB CHANNELS`, or
    /// `PUBSUB SHARDCHANNELS` on every master.
    pub fn channels(&self, pattern: &str) -> Vec<String> {
        match self {
            TestRedis::Single(redis) => {
                let mut channels: Vec<String> =
                    redis.query(redis::cmd("PUBSUB").arg("CHANNELS").arg(pattern));
                channels.sort();
                channels
            }
            TestRedis::Cluster(cluster) => cluster.shard_channels(pattern),
        }
    }

    /// The keys that match `pattern`, on every master, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = match self {
            TestRedis::Single(redis) => redis.query(redis::cmd("KEYS").arg(pattern)),
            TestRedis::Cluster(cluster) => cluster
                .on_masters(|node| node.query::<Vec<String>>(redis::cmd("KEYS").arg(pattern))),
        };
        keys.sort();
        keys
    }

    /// The list of calls waiting for `route` under `prefix`: `P queue:<route>` on one
    /// Redis, `P{r:<route>}queue` on a cluster.
    pub fn queue_key(&self, prefix: &str, route: &str) -> String {
        match self {
            TestRedis::Single(_) => format!("{prefix}queue:{route}"),
            TestRedis::Cluster(_) => format!("{prefix}{{r:{route}}}queue"),
        }
    }

    /// A `KEYS` pattern of the processes' lists of calls taken and not yet answered.
    pub fn processing_pattern(&self, prefix: &str) -> String {
        match self {
            TestRedis::Single(_) => format!("{prefix}processing:*"),
            TestRedis::Cluster(_) => format!("{prefix}{{r:*}}processing:*"),
        }
    }

    /// Runs `command` where `key` lives and reads its answer as `T`.
    pub fn query_key<T: redis::FromRedisValue>(&self, key: &str, command: &redis::Cmd) -> T {
        match self {
            TestRedis::Single(redis) => redis.query(command),
            TestRedis::Cluster(cluster) => cluster.query_key(key, command),
        }
    }

    /// Kills Redis (every node) at once, as a crash would.
    pub fn kill(&mut self) {
        match self {
            TestRedis::Single(redis) => redis.kill(),
            TestRedis::Cluster(cluster) => cluster.kill_all(),
        }
    }

    /// Starts Redis (every node) again, empty; a cluster keeps its slots.
    pub fn restart(&mut self) {
        match self {
            TestRedis::Single(redis) => redis.restart(),
            TestRedis::Cluster(cluster) => cluster.restart_all(),
        }
    }

    /// The single Redis, for what only it has (`MONITOR` of the reaper, …).
    pub fn single(&self) -> Option<&RedisServer> {
        match self {
            TestRedis::Single(redis) => Some(redis),
            TestRedis::Cluster(_) => None,
        }
    }

    /// The cluster, for what only it has.
    pub fn cluster(&self) -> Option<&RedisCluster> {
        match self {
            TestRedis::Single(_) => None,
            TestRedis::Cluster(cluster) => Some(cluster),
        }
    }
}

/// Makes each named `async fn name(redis: TestRedis)` a test per mode: `name::single`
/// and `name::cluster`, each on a Redis of its own, run when `COMET_TEST_REDIS` asks.
/// `redis_tests!(name, …)` runs them on tokio; `redis_tests!(actix: name, …)` in an
/// actix system (for `awc` and in-process servers).
#[macro_export]
macro_rules! redis_tests {
    (actix: $($name:ident),+ $(,)?) => {
        $( $crate::redis_tests!(@one actix_web::test, $name); )+
    };
    ($($name:ident),+ $(,)?) => {
        $( $crate::redis_tests!(@one tokio::test, $name); )+
    };
    (@one $runtime:path, $name:ident) => {
        mod $name {
            use super::test_redis::{Mode, TestRedis};

            #[$runtime]
            async fn single() {
                if Mode::Single.wanted() {
                    super::$name(TestRedis::start(Mode::Single)).await;
                }
            }

            #[$runtime]
            async fn cluster() {
                if Mode::Cluster.wanted() {
                    super::$name(TestRedis::start(Mode::Cluster)).await;
                }
            }
        }
    };
}
