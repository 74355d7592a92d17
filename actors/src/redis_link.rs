//! What the Redis hub and the Redis queue share: opening the client and the connection
//! pool from a [`RedisConfig`], the reconnection backoff, and the setup error.
//!
//! Nothing here connects: a pool opens connections when first used, so a process starts
//! (and serves local clients) even while Redis is down, and catches up when it is back.
//!
//! Why one shared connection (`SharedConnection`) rather than a pool checkout per
//! command: deadpool-redis checks every connection it hands out with `UNWATCH` + `PING`,
//! which would double the commands (and add a round trip) of every queue operation. A
//! multiplexed connection already pipelines concurrent commands over one socket, so the
//! queue shares one, taken from the pool, and takes a fresh one only when it breaks.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool_redis::{Connection as PooledConnection, Manager, Pool, Runtime};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, ProtocolVersion, RedisError};
use redis::{RedisFuture, Value};
use thiserror::Error;

use crate::config::RedisConfig;

/// Why a Redis hub or queue could not be set up (before any connection is tried).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RedisSetupError {
    /// The URL is not one the `redis` crate understands.
    #[error("invalid Redis URL `{url}`: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection pool could not be built.
    #[error("cannot build the Redis connection pool: {0}")]
    Pool(String),
    /// A Redis Cluster's node runs a Redis without sharded pub/sub.
    #[error(
        "the Redis Cluster node {node} runs Redis {version}; comet on a Redis Cluster needs \
         Redis 7.0 or later (sharded pub/sub: SSUBSCRIBE, SPUBLISH)"
    )]
    TooOld {
        /// The node asked.
        node: String,
        /// The version it runs.
        version: String,
    },
    /// `--redis-cluster` names a Redis that is not in cluster mode.
    #[error(
        "{node} is not a Redis Cluster node (cluster_enabled:0); use --redis for a single Redis"
    )]
    NotCluster {
        /// The node asked.
        node: String,
    },
}

impl RedisConfig {
    /// Checks the URL or the seed URLs (without connecting): what
    /// [`RedisHub::new`](crate::RedisHub::new) and [`RedisQueue::new`](crate::RedisQueue::new)
    /// would refuse.
    pub fn check(&self) -> Result<(), RedisSetupError> {
        if self.is_cluster() {
            cluster_client(self).map(|_| ())
        } else {
            client(self).map(|_| ())
        }
    }

    /// On a cluster, asks the first seed node that answers whether it can serve comet: a
    /// cluster node running Redis 7.0 or later. `Ok(None)` when none answers within
    /// `connect_timeout` (the process starts anyway and keeps trying), `Ok(Some(version))`
    /// when one does and can; a single Redis answers `Ok(None)` at once.
    pub async fn check_cluster(&self) -> Result<Option<String>, RedisSetupError> {
        for seed in &self.cluster {
            let Ok(client) = Client::open(seed.as_str()) else {
                continue;
            };
            let connection = tokio::time::timeout(
                self.connect_timeout,
                client.get_multiplexed_async_connection(),
            );
            let Ok(Ok(mut connection)) = connection.await else {
                continue;
            };
            let mut info = redis::cmd("INFO");
            info.arg("server").arg("cluster");
            let Ok(Ok(info)) = tokio::time::timeout(
                self.command_timeout,
                info.query_async::<String>(&mut connection),
            )
            .await
            else {
                continue;
            };
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
                    .map(str::to_owned)
            };
            let version = field("redis_version").unwrap_or_else(|| "unknown".into());
            let major = version
                .split('.')
                .next()
                .and_then(|v| v.parse::<u32>().ok());
            if major.is_none_or(|major| major < 7) {
                return Err(RedisSetupError::TooOld {
                    node: seed.clone(),
                    version,
                });
            }
            if field("cluster_enabled").as_deref() != Some("1") {
                return Err(RedisSetupError::NotCluster { node: seed.clone() });
            }
            return Ok(Some(version));
        }
        Ok(None)
    }
}

/// The cluster client for `config.cluster` (RESP3; each command bounded by
/// `command_timeout`, each connect by `connect_timeout`).
pub(crate) fn cluster_client(config: &RedisConfig) -> Result<ClusterClient, RedisSetupError> {
    let bad = |err: RedisError| RedisSetupError::BadUrl {
        url: config.cluster.join(","),
        reason: err.to_string(),
    };
    for seed in &config.cluster {
        Client::open(seed.as_str()).map_err(|err| RedisSetupError::BadUrl {
            url: seed.clone(),
            reason: err.to_string(),
        })?;
    }
    ClusterClientBuilder::new(config.cluster.iter().map(String::as_str))
        .use_protocol(ProtocolVersion::RESP3)
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.command_timeout)
        .retries(2)
        .build()
        .map_err(bad)
}

/// A multiplexed connection to one Redis, or to a Redis Cluster (routed by each
/// command's first key): what the queue and the hub's scripts run on.
#[derive(Clone)]
pub(crate) enum Connection {
    /// One Redis.
    Single(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => connection.req_packed_commands(cmd, offset, count),
            Connection::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Where a [`SharedConnection`] takes its connection from.
pub(crate) enum Source {
    /// A pool of connections to one Redis.
    Single(Pool),
    /// A Redis Cluster (its connection is itself multiplexed and repairs itself).
    Cluster(Box<ClusterClient>),
}

impl Source {
    /// The source for `config`: the cluster when it names one, else a pool of `size`.
    pub(crate) fn new(config: &RedisConfig, size: usize) -> Result<Source, RedisSetupError> {
        if config.is_cluster() {
            cluster_client(config).map(|client| Source::Cluster(Box::new(client)))
        } else {
            pool(config, size).map(Source::Single)
        }
    }
}

/// Opens (without connecting) the client for `config.url`.
pub(crate) fn client(config: &RedisConfig) -> Result<Client, RedisSetupError> {
    Client::open(config.url.as_str()).map_err(|err| RedisSetupError::BadUrl {
        url: config.url.clone(),
        reason: err.to_string(),
    })
}

/// A pool of up to `size` multiplexed connections, each command bounded by
/// `command_timeout`, each connect by `connect_timeout`.
pub(crate) fn pool(config: &RedisConfig, size: usize) -> Result<Pool, RedisSetupError> {
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout));
    let manager = Manager::new_with_config(config.url.as_str(), connection).map_err(|err| {
        RedisSetupError::BadUrl {
            url: config.url.clone(),
            reason: err.to_string(),
        }
    })?;
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.command_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.command_timeout))
        .build()
        .map_err(|err| RedisSetupError::Pool(err.to_string()))
}

/// Exponential backoff between reconnection attempts, with a little jitter so that the
/// processes of a cluster do not all knock at once when Redis comes back.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &RedisConfig) -> Backoff {
        let min = config.reconnect_min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: config.reconnect_max.max(min),
            next: min,
        }
    }

    /// The wait before the next attempt (each one twice the last, up to the maximum).
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        // Up to a quarter more, from the clock's low bits: enough to spread processes.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        wait + wait.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    /// Back to the shortest wait, after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// One multiplexed connection from a pool, shared by every caller until it breaks; while
/// Redis is unreachable, callers fail at once until the next attempt (with backoff).
pub(crate) struct SharedConnection {
    source: Source,
    state: Mutex<Shared>,
    /// Held by the one caller opening the connection: the others wait for it and share
    /// what it opened, instead of each taking a pool slot (a burst of callers on a new
    /// connection would otherwise wait for slots that never come back).
    opening: tokio::sync::Mutex<()>,
}

struct Shared {
    /// The connection, with the pool's handle of it on one Redis.
    live: Option<(Option<PooledConnection>, Connection)>,
    /// Redis is down: no attempt before this, and the error to answer until then.
    down: Option<(Instant, String)>,
    backoff: Backoff,
}

impl SharedConnection {
    pub(crate) fn new(source: Source, config: &RedisConfig) -> SharedConnection {
        SharedConnection {
            source,
            state: Mutex::new(Shared {
                live: None,
                down: None,
                backoff: Backoff::new(config),
            }),
            opening: tokio::sync::Mutex::new(()),
        }
    }

    /// The live connection, or the error to answer while Redis is down; `None` when
    /// one should be opened.
    fn ready(&self) -> Option<Result<Connection, String>> {
        let state = self.lock();
        if let Some((_, connection)) = &state.live {
            return Some(Ok(connection.clone()));
        }
        match &state.down {
            Some((retry_at, err)) if Instant::now() < *retry_at => Some(Err(err.clone())),
            _ => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every update is one step, so a poisoned lock still guards consistent state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shared connection, opened if needed.
    pub(crate) async fn get(&self) -> Result<Connection, String> {
        if let Some(ready) = self.ready() {
            return ready;
        }
        let _opening = self.opening.lock().await;
        // Opened (or failed) by the caller that held the lock before.
        if let Some(ready) = self.ready() {
            return ready;
        }
        let opened = match &self.source {
            Source::Single(pool) => pool.get().await.map(|pooled| {
                let connection = Connection::Single((*pooled).clone());
                (Some(pooled), connection)
            }),
            Source::Cluster(client) => client
                .get_async_connection()
                .await
                .map(|connection| (None, Connection::Cluster(connection)))
                .map_err(deadpool_redis::PoolError::Backend),
        };
        match opened {
            Ok((pooled, connection)) => {
                let mut state = self.lock();
                state.down = None;
                state.backoff.reset();
                // Two callers may have opened one each; keep the first, return the other.
                if let Some((_, live)) = &state.live {
                    return Ok(live.clone());
                }
                state.live = Some((pooled, connection.clone()));
                Ok(connection)
            }
            Err(err) => {
                let err = err.to_string();
                let mut state = self.lock();
                let wait = state.backoff.next_wait();
                state.down = Some((Instant::now() + wait, err.clone()));
                Err(err)
            }
        }
    }

    /// Whether Redis answers a `PING` now (for readiness checks): the error otherwise.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let mut connection = self.get().await?;
        match redis::cmd("PING").query_async::<()>(&mut connection).await {
            Ok(()) => Ok(()),
            Err(err) => {
                self.failed(&err);
                Err(err.to_string())
            }
        }
    }

    /// A command failed: if the connection itself is to blame, drop it (for good, not
    /// back into the pool) so that the next caller opens a fresh one.
    pub(crate) fn failed(&self, err: &RedisError) {
        if err.is_unrecoverable_error() || err.is_io_error() || err.is_timeout() {
            // Out of the pool for good; a cluster's connection is simply dropped.
            if let Some((Some(pooled), _)) = self.lock().live.take() {
                drop(PooledConnection::take(pooled));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut config = RedisConfig::new("redis://127.0.0.1/");
        config.reconnect_min = Duration::from_millis(100);
        config.reconnect_max = Duration::from_millis(350);
        let mut backoff = Backoff::new(&config);
        let waits: Vec<Duration> = (0..4).map(|_| backoff.next_wait()).collect();
        // Up to a quarter more (in µs: `base * 5 / 4` ms rounds 437.5 down to 437).
        let within = |wait: Duration, base: u64| {
            wait >= Duration::from_millis(base) && wait <= Duration::from_micros(base * 1250)
        };
        assert!(within(waits[0], 100), "{waits:?}");
        assert!(within(waits[1], 200), "{waits:?}");
        assert!(within(waits[2], 350), "{waits:?}");
        assert!(within(waits[3], 350), "{waits:?}");
        backoff.reset();
        assert!(within(backoff.next_wait(), 100));
    }

    #[test]
    fn bad_urls_are_refused_before_connecting() {
        let config = RedisConfig::new("not a url");
        assert!(matches!(
            client(&config),
            Err(RedisSetupError::BadUrl { .. })
        ));
        assert!(client(&RedisConfig::new("redis://127.0.0.1:1/")).is_ok());
    }
}
