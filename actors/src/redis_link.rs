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
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
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
}

impl RedisConfig {
    /// Checks the URL (without connecting): what [`RedisHub::new`](crate::RedisHub::new)
    /// and [`RedisQueue::new`](crate::RedisQueue::new) would refuse.
    pub fn check(&self) -> Result<(), RedisSetupError> {
        client(self).map(|_| ())
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
    pool: Pool,
    state: Mutex<Shared>,
    /// Held by the one caller opening the connection: the others wait for it and share
    /// what it opened, instead of each taking a pool slot (a burst of callers on a new
    /// connection would otherwise wait for slots that never come back).
    opening: tokio::sync::Mutex<()>,
}

struct Shared {
    live: Option<(PooledConnection, MultiplexedConnection)>,
    /// Redis is down: no attempt before this, and the error to answer until then.
    down: Option<(Instant, String)>,
    backoff: Backoff,
}

impl SharedConnection {
    pub(crate) fn new(pool: Pool, config: &RedisConfig) -> SharedConnection {
        SharedConnection {
            pool,
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
    fn ready(&self) -> Option<Result<MultiplexedConnection, String>> {
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
    pub(crate) async fn get(&self) -> Result<MultiplexedConnection, String> {
        if let Some(ready) = self.ready() {
            return ready;
        }
        let _opening = self.opening.lock().await;
        // Opened (or failed) by the caller that held the lock before.
        if let Some(ready) = self.ready() {
            return ready;
        }
        match self.pool.get().await {
            Ok(pooled) => {
                let connection = (*pooled).clone();
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
            if let Some((pooled, _)) = self.lock().live.take() {
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
        let within = |wait: Duration, base: u64| {
            wait >= Duration::from_millis(base) && wait <= Duration::from_millis(base * 5 / 4)
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
