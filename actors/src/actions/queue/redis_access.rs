//! What every part of the Redis queue needs to reach Redis: the shared connection, where
//! the keys are, this process's name in them, and the node it serves; and running a
//! command or a script on a cluster again while the cluster says to try again.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use redis::{FromRedisValue, RedisError, ScriptInvocation};

use super::redis_layout::Layout;
use super::{QueueError, QueueLink};
use crate::redis_link::{self, SharedConnection};

/// What every part of the queue needs to reach Redis; the batching task holds this, not
/// the queue, so that dropping the queue still stops its heartbeat.
pub(super) struct Link {
    pub(super) connection: SharedConnection,
    /// Where the keys are.
    pub(super) layout: Layout,
    /// The "queue updated" channel, `P actions` (on one Redis, where scripts publish it).
    pub(super) notice: String,
    /// This process's name in the keys.
    pub(super) consumer: String,
    /// The node's hub and connections (see [`Queue::attach`]).
    pub(super) node: OnceLock<QueueLink>,
    /// On a cluster, the routes recorded in `P{consumers}routes:<consumer>` already.
    pub(super) recorded: Mutex<BTreeSet<String>>,
    /// On a cluster, how long a command refused during a migration is tried again
    /// (`command_timeout`).
    pub(super) patience: std::time::Duration,
}

impl Link {
    pub(super) async fn connection(&self) -> Result<redis_link::Connection, QueueError> {
        self.connection.get().await.map_err(QueueError::Unavailable)
    }

    /// A command failed: drop the connection if it is to blame, and say Redis is away.
    pub(super) fn failed(&self, err: RedisError) -> QueueError {
        self.connection.failed(&err);
        unavailable(err)
    }
}

/// Runs a script on the cluster, again while the cluster says to try again (`TRYAGAIN`
/// during a slot's migration, or a redirection the client gave up on: the script did not
/// run then), for at most `command_timeout` in all.
pub(super) async fn invoke<T: FromRedisValue>(
    link: &Link,
    invocation: &ScriptInvocation<'_>,
) -> Result<T, QueueError> {
    let patience = Instant::now() + link.patience;
    let mut attempt: u32 = 0;
    loop {
        let mut connection = link.connection().await?;
        match invocation.invoke_async::<T>(&mut connection).await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_cluster_error() && Instant::now() < patience => {
                attempt += 1;
                log::debug!(
                    "redis queue: the cluster said to try again ({err}), attempt {attempt}"
                );
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10)))).await;
            }
            Err(err) => return Err(link.failed(err)),
        }
    }
}

/// Runs one command on the cluster (as [`invoke`] does a script).
pub(super) async fn query<T: FromRedisValue>(
    link: &Link,
    command: &redis::Cmd,
) -> Result<T, QueueError> {
    let patience = Instant::now() + link.patience;
    let mut attempt: u32 = 0;
    loop {
        let mut connection = link.connection().await?;
        match command.query_async::<T>(&mut connection).await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_cluster_error() && Instant::now() < patience => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10)))).await;
            }
            Err(err) => return Err(link.failed(err)),
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one step, so a poisoned lock still guards consistent state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(err.to_string())
}
