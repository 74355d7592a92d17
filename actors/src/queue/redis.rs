//! The Redis queue: action calls in Redis lists, run at least once.
//!
//! Keys, all under the node's prefix `P`:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P queue:<route>` | list | calls waiting for `route`, oldest first |
//! | `P processing:<consumer>` | list | calls a process has taken and not yet answered |
//! | `P alive:<consumer>` | string, with TTL | the process's heartbeat |
//! | `P served:<route>` | sorted set | processes serving `route`, scored by heartbeat expiry |
//! | `P consumers` | set | processes that may hold taken calls, for the reaper |
//! | `P dead` | list | entries that could not be read, set aside for an operator |
//!
//! A call is pushed (RPUSH) only if some live process serves its route; it is taken with
//! LMOVE into the taker's processing list, atomically, so at every moment it is in
//! exactly one list; it is acknowledged (LREM) once answered. Every process that runs
//! actions renews its heartbeat and its routes every third of `process_ttl`, and looks for
//! dead processes: a consumer whose heartbeat key expired has its processing list put
//! back at the head of the queues, in order, in one Lua script (so two reapers never put
//! a call back twice). A live process's calls are never put back, so a call is run twice
//! only if its process stalled for longer than `process_ttl` or died after answering but
//! before acknowledging. Every check uses Redis's clock, never the processes'.
//!
//! Needs Redis 6.2 or later (LMOVE). Keys are computed inside the scripts, so this is for
//! a single Redis (or a primary with replicas), not Redis Cluster.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::future::{self, BoxFuture, FutureExt};
use redis::aio::MultiplexedConnection;
use redis::{RedisError, Script};

use super::{ActionCall, Claimed, Queue, QueueError};
use crate::config::RedisConfig;
use crate::redis_link::{self, RedisSetupError, SharedConnection};

/// Pushes a call if a live process serves its route. KEYS: served, queue. ARGV: entry.
const PUSH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZCOUNT', KEYS[1], now, '+inf') == 0 then
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
";

/// Takes the oldest call of the first route that has one, and tells whether more wait.
/// KEYS: processing, queues... Returns `{entry, 0|1}`, or nil.
const POP: &str = r"
for i = 2, #KEYS do
  local entry = redis.call('LMOVE', KEYS[i], KEYS[1], 'LEFT', 'LEFT')
  if entry then
    local more = 0
    for j = i, #KEYS do
      if redis.call('LLEN', KEYS[j]) > 0 then
        more = 1
        break
      end
    end
    return {entry, more}
  end
end
return false
";

/// Renews a process's heartbeat and routes. KEYS: alive, consumers, served...
/// ARGV: consumer, ttl in ms.
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], now + ttl, 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], now + ttl, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. now)
end
return 1
";

/// Puts back the calls of every consumer whose heartbeat expired. KEYS: consumers.
/// ARGV: prefix, this consumer. Returns how many calls were put back.
const REAP: &str = r"
local prefix = ARGV[1]
local moved = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[2] and redis.call('EXISTS', prefix .. 'alive:' .. id) == 0 then
    local processing = prefix .. 'processing:' .. id
    while true do
      local entry = redis.call('LPOP', processing)
      if not entry then
        break
      end
      local ok, call = pcall(cjson.decode, entry)
      if ok and type(call) == 'table' and type(call.route) == 'string' then
        redis.call('LPUSH', prefix .. 'queue:' .. call.route, entry)
      else
        redis.call('RPUSH', prefix .. 'dead', entry)
      end
      moved = moved + 1
    end
    redis.call('SREM', KEYS[1], id)
  end
end
return moved
";

struct Scripts {
    push: Script,
    pop: Script,
    heartbeat: Script,
    reap: Script,
}

struct Inner {
    link: SharedConnection,
    config: RedisConfig,
    prefix: String,
    consumer: String,
    scripts: Scripts,
    /// The routes this process serves now.
    served: Mutex<BTreeSet<String>>,
    /// Whether the heartbeat task runs.
    upkeep: Mutex<bool>,
}

/// A [`Queue`] in Redis lists: first come first served, at least once, shared by every
/// process on the same Redis and prefix.
///
/// ```
/// use comet_actors::{Queue, RedisConfig, RedisQueue};
/// // Nothing connects before the first command, so this works anywhere.
/// let queue = RedisQueue::new(&RedisConfig::new("redis://127.0.0.1:6379/"), "comet:").unwrap();
/// assert_eq!(queue.name(), "redis");
/// ```
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

impl RedisQueue {
    /// A queue on the Redis at `config.url`, with every key under `prefix` (the node's
    /// prefix, e.g. `comet:`). Checks the URL; connects on first use.
    pub fn new(config: &RedisConfig, prefix: &str) -> Result<RedisQueue, RedisSetupError> {
        let link = SharedConnection::new(redis_link::pool(config, 2)?, config);
        let consumer = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        Ok(RedisQueue {
            inner: Arc::new(Inner {
                link,
                config: config.clone(),
                prefix: prefix.to_owned(),
                consumer,
                scripts: Scripts {
                    push: Script::new(PUSH),
                    pop: Script::new(POP),
                    heartbeat: Script::new(HEARTBEAT),
                    reap: Script::new(REAP),
                },
                served: Mutex::new(BTreeSet::new()),
                upkeep: Mutex::new(false),
            }),
        })
    }

    /// This process's name in the queue's keys (its processing list and heartbeat).
    pub fn consumer(&self) -> &str {
        &self.inner.consumer
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one step, so a poisoned lock still guards consistent state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unavailable(err: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(err.to_string())
}

impl Inner {
    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    fn processing(&self) -> String {
        self.key("processing", &self.consumer)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, QueueError> {
        self.link.get().await.map_err(QueueError::Unavailable)
    }

    /// A command failed: drop the connection if it is to blame, and say Redis is away.
    fn failed(&self, err: RedisError) -> QueueError {
        self.link.failed(&err);
        unavailable(err)
    }

    /// Renews the heartbeat and the served routes.
    async fn heartbeat(&self) -> Result<(), QueueError> {
        let routes: Vec<String> = lock(&self.served).iter().cloned().collect();
        let mut invocation = self.scripts.heartbeat.prepare_invoke();
        invocation
            .key(self.key("alive", &self.consumer))
            .key(format!("{}consumers", self.prefix));
        for route in &routes {
            invocation.key(self.key("served", route));
        }
        invocation
            .arg(&self.consumer)
            .arg(self.config.process_ttl.as_millis().max(1) as u64);
        let mut connection = self.connection().await?;
        invocation
            .invoke_async::<()>(&mut connection)
            .await
            .map_err(|err| self.failed(err))
    }

    /// Puts back the calls of dead processes; answers how many.
    async fn reap(&self) -> Result<u64, QueueError> {
        let mut connection = self.connection().await?;
        self.scripts
            .reap
            .key(format!("{}consumers", self.prefix))
            .arg(&self.prefix)
            .arg(&self.consumer)
            .invoke_async::<u64>(&mut connection)
            .await
            .map_err(|err| self.failed(err))
    }

    /// Sets an unreadable entry aside in `P dead`, out of the processing list.
    async fn set_aside(&self, entry: &[u8]) -> Result<(), QueueError> {
        let mut connection = self.connection().await?;
        redis::pipe()
            .atomic()
            .lrem(self.processing(), 1, entry)
            .ignore()
            .rpush(format!("{}dead", self.prefix), entry)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
            .map_err(|err| self.failed(err))
    }
}

/// The heartbeat task: renews the heartbeat, puts back calls of dead processes; stops
/// when the queue is dropped.
async fn upkeep(queue: Weak<Inner>, interval: std::time::Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        ticks.tick().await;
        let Some(queue) = queue.upgrade() else { break };
        let result = match queue.heartbeat().await {
            Ok(()) => queue.reap().await,
            Err(err) => Err(err),
        };
        match result {
            Ok(moved) => {
                if !healthy {
                    log::info!("redis queue: heartbeat renewed, Redis is back");
                    healthy = true;
                }
                if moved > 0 {
                    log::warn!(
                        "redis queue: put back {moved} action call(s) taken by a process that \
                         died before answering"
                    );
                }
            }
            Err(err) if healthy => {
                log::error!("redis queue: cannot renew the heartbeat: {err}; retrying");
                healthy = false;
            }
            Err(err) => log::debug!("redis queue: heartbeat still failing: {err}"),
        }
    }
}

impl Queue for RedisQueue {
    fn serve(&self, routes: &[String]) -> BoxFuture<'static, Result<(), QueueError>> {
        lock(&self.inner.served).extend(routes.iter().cloned());
        {
            let mut started = lock(&self.inner.upkeep);
            if !*started {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return future::ready(Err(QueueError::Unavailable(
                        "RedisQueue::serve must run inside a tokio runtime".into(),
                    )))
                    .boxed();
                };
                runtime.spawn(upkeep(
                    Arc::downgrade(&self.inner),
                    self.inner.config.heartbeat_interval(),
                ));
                *started = true;
                log::info!(
                    "redis queue: consumer {} serves {routes:?} on {}",
                    self.inner.consumer,
                    self.inner.config.url
                );
            }
        }
        let inner = self.inner.clone();
        async move { inner.heartbeat().await }.boxed()
    }

    fn retire(&self, routes: &[String]) -> BoxFuture<'static, Result<(), QueueError>> {
        {
            let mut served = lock(&self.inner.served);
            for route in routes {
                served.remove(route);
            }
        }
        let inner = self.inner.clone();
        let keys: Vec<String> = routes.iter().map(|r| inner.key("served", r)).collect();
        async move {
            let mut connection = inner.connection().await?;
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.zrem(key, &inner.consumer).ignore();
            }
            pipe.query_async::<()>(&mut connection)
                .await
                .map_err(|err| inner.failed(err))
        }
        .boxed()
    }

    fn push(&self, call: ActionCall) -> BoxFuture<'static, Result<(), QueueError>> {
        let inner = self.inner.clone();
        async move {
            let entry = serde_json::to_vec(&call)
                .map_err(|err| QueueError::Corrupt(format!("cannot encode the call: {err}")))?;
            let mut connection = inner.connection().await?;
            let pushed: i64 = inner
                .scripts
                .push
                .key(inner.key("served", &call.route))
                .key(inner.key("queue", &call.route))
                .arg(entry)
                .invoke_async(&mut connection)
                .await
                .map_err(|err| inner.failed(err))?;
            if pushed == 1 {
                Ok(())
            } else {
                Err(QueueError::NotServed(call.route))
            }
        }
        .boxed()
    }

    fn pop(&self, routes: &[String]) -> BoxFuture<'static, Result<Option<Claimed>, QueueError>> {
        if routes.is_empty() {
            return future::ready(Ok(None)).boxed();
        }
        let inner = self.inner.clone();
        let queues: Vec<String> = routes.iter().map(|r| inner.key("queue", r)).collect();
        async move {
            let mut invocation = inner.scripts.pop.prepare_invoke();
            invocation.key(inner.processing());
            for queue in &queues {
                invocation.key(queue);
            }
            let mut connection = inner.connection().await?;
            let popped: Option<(Vec<u8>, u8)> = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(|err| inner.failed(err))?;
            drop(connection);
            let Some((entry, more)) = popped else {
                return Ok(None);
            };
            let read = String::from_utf8(entry)
                .map_err(|err| (err.into_bytes(), "not UTF-8".to_owned()))
                .and_then(|text| match serde_json::from_str::<ActionCall>(&text) {
                    Ok(call) => Ok(Claimed {
                        call,
                        receipt: text,
                        more: more == 1,
                    }),
                    Err(err) => Err((text.into_bytes(), err.to_string())),
                });
            match read {
                Ok(claimed) => Ok(Some(claimed)),
                Err((entry, why)) => {
                    inner.set_aside(&entry).await?;
                    Err(QueueError::Corrupt(format!(
                        "an entry of {queues:?} could not be read ({why}); moved to `{}dead`",
                        inner.prefix
                    )))
                }
            }
        }
        .boxed()
    }

    fn ack(&self, claimed: &Claimed) -> BoxFuture<'static, Result<(), QueueError>> {
        let inner = self.inner.clone();
        let receipt = claimed.receipt.clone();
        async move {
            let mut connection = inner.connection().await?;
            redis::cmd("LREM")
                .arg(inner.processing())
                .arg(1)
                .arg(receipt)
                .query_async::<()>(&mut connection)
                .await
                .map_err(|err| inner.failed(err))
        }
        .boxed()
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
