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
//! | `P dead` | list | entries that could not be read, set aside for an operator (bounded: see `redis_dead.rs`) |
//!
//! A call is pushed (RPUSH) only if some live process serves its route, and the push
//! itself publishes the "queue updated" notice (`P actions`); it is taken (LPOP into the
//! taker's processing list, in one script) so that at every moment it is in exactly one
//! list; it is acknowledged (LREM) once answered. Pushes and acknowledgements of a process
//! go out in batches (one script call for all that piled up while the last one was on its
//! way, see `redis_batch.rs`), and a pop takes as many calls as the process has idle
//! workers, so a busy cluster spends a few Redis commands per batch, not per call.
//!
//! Every process that runs actions renews its heartbeat and its routes every third of
//! `process_ttl`, and looks for dead processes: a consumer whose heartbeat key expired has
//! its processing list put back at the head of the queues, in order, in one Lua script (so
//! two reapers never put a call back twice). A live process's calls are never put back, so
//! a call is run twice only if its process stalled for longer than `process_ttl` or died
//! after answering but before acknowledging. A process that stops gracefully gives back
//! what it still holds itself ([`Queue::requeue`], [`Queue::leave`]), each call at most
//! once (the scripts move a call only from a list that still holds it). Every check uses
//! Redis's clock, never the processes'. The scripts are in `redis_scripts.rs`.
//!
//! Needs Redis 6.2 or later (LPOP with a count).
//!
//! # On a Redis Cluster
//!
//! When `config.is_cluster()`, [`RedisQueue::new`] picks the cluster layout
//! (`redis_layout.rs`): every key of a route shares the hash tag `{r:<route>}`, everything
//! about the consumers shares `{consumers}`, and each script (`redis_cluster_scripts.rs`)
//! runs on one slot with every key in `KEYS`:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P{r:<route>}queue` | list | calls waiting for `route` |
//! | `P{r:<route>}processing:<consumer>` | list | calls of `route` a process has taken |
//! | `P{r:<route>}served` | sorted set | processes serving `route`, scored by heartbeat expiry |
//! | `P{r:<route>}dead` | list | unreadable entries of `route`, bounded as `P dead` |
//! | `P{consumers}alive:<consumer>` | string, with TTL | the process's heartbeat |
//! | `P{consumers}consumers` | set | processes that may hold taken calls |
//! | `P{consumers}routes:<consumer>` | set | routes a process may hold calls of (recorded before its first take of each) |
//! | `P{consumers}reaping` | sorted set | dead processes a reaper claimed, scored by when the claim lapses |
//!
//! A batch of the exchange is one `EVALSHA` per route, sent together
//! (`redis_exchange.rs`). A script cannot publish to the caller's process channel (another
//! slot), so the queue publishes through the node's hub right after the script answered:
//! the "queue updated" notice after a push into an empty list ([`QueueLink::notify`]), and
//! an answer after its acknowledgement found the call still held. **A process that dies
//! between the two leaves its caller with `timeout`**: the call was acknowledged, so it is
//! not run again. As on one Redis, the queue waits for `Hub::flush` before acknowledging a
//! call with an answer for another process, so the answer overtakes nothing the handler
//! published (the hub's partitions need not keep order between them). The reaper and
//! `leave` work in steps, each safe to repeat (`redis_cluster.rs`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bytestring::ByteString;
use futures::future::{self, BoxFuture, FutureExt};
use redis::{RedisError, Script};

use super::redis_batch::{Batcher, Bounds};
use super::redis_cluster_scripts as cluster_scripts;
use super::redis_dead::DeadCount;
use super::redis_exchange::{self as exchange, Op, Outcome};
use super::redis_layout::Layout;
use super::redis_scripts as scripts;
use super::{unix_millis, ActionCall, Claimed, Popped, Queue, QueueError, QueueLink, Reply};
use crate::config::RedisConfig;
use crate::hub::HubNames;
use crate::redis_link::{self, RedisSetupError, SharedConnection};

/// The scripts the queue runs itself (the batching task holds its own): the layout's
/// own for the four steps both have, and those only a cluster needs (on one Redis
/// `return 0`, never run: nothing is loaded before a script's first call).
pub(super) struct Scripts {
    /// Puts one call back (`REQUEUE` of either layout).
    pub(super) requeue: Script,
    /// Renews the heartbeat (on a cluster, of the consumer; the routes with `serve`).
    pub(super) heartbeat: Script,
    /// The reaper (on a cluster, its claim of dead consumers: `CLAIM`).
    pub(super) reap: Script,
    /// This process leaves (on a cluster, the consumers only, after `put_back`).
    pub(super) leave: Script,
    /// On a cluster: a route's served set renewed (see `redis_cluster_scripts::SERVE`).
    pub(super) serve: Script,
    /// On a cluster: a dead consumer's routes are done.
    pub(super) reaped: Script,
    /// On a cluster: one route's processing list put back.
    pub(super) put_back: Script,
    /// On a cluster: an unreadable entry set aside.
    pub(super) set_aside: Script,
}

impl Scripts {
    fn new(layout: &Layout) -> Scripts {
        if layout.is_cluster() {
            Scripts {
                requeue: Script::new(cluster_scripts::REQUEUE),
                heartbeat: Script::new(cluster_scripts::HEARTBEAT),
                reap: Script::new(cluster_scripts::CLAIM),
                leave: Script::new(cluster_scripts::LEAVE),
                serve: Script::new(cluster_scripts::SERVE),
                reaped: Script::new(cluster_scripts::REAPED),
                put_back: Script::new(cluster_scripts::PUT_BACK),
                set_aside: Script::new(cluster_scripts::SET_ASIDE),
            }
        } else {
            let unused = || Script::new("return 0");
            Scripts {
                requeue: Script::new(scripts::REQUEUE),
                heartbeat: Script::new(scripts::HEARTBEAT),
                reap: Script::new(&scripts::reap()),
                leave: Script::new(&scripts::leave()),
                serve: unused(),
                reaped: unused(),
                put_back: unused(),
                set_aside: unused(),
            }
        }
    }
}

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

pub(super) struct Inner {
    pub(super) link: Arc<Link>,
    pub(super) config: RedisConfig,
    pub(super) scripts: Scripts,
    /// Pushes, acknowledgements and takes, sent together (see `redis_exchange.rs`).
    exchange: Batcher<Op, Outcome>,
    /// The routes this process serves now.
    pub(super) served: Mutex<BTreeSet<String>>,
    /// Whether the heartbeat task runs.
    upkeep: Mutex<bool>,
    /// Set by [`Queue::leave`]: the heartbeat stops for good.
    left: AtomicBool,
    /// Entries this process set aside in `P dead`.
    pub(super) dead: DeadCount,
}

/// A [`Queue`] in Redis lists: first come first served, at least once, shared by every
/// process on the same Redis and prefix.
///
/// On one Redis, its pushes publish the "queue updated" notice on `<prefix>actions` in
/// the same Redis, and its answers to callers on other processes go out in the same
/// script as the acknowledgement, on `<prefix>process:<id>`: the workers and callers of a
/// [`RedisHub`](crate::RedisHub) on that
/// Redis and prefix hear it (as `CometBuilder::redis` of the `comet` crate sets up). With
/// another hub the workers still find calls, at their periodic look
/// (`queue_poll_interval`). On a Redis Cluster (`RedisConfig::cluster`) both go through
/// the hub of the node it is [attached](Queue::attach) to, after the script (see the
/// module's doc).
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
    /// A queue on the Redis at `config.url`, or on the Redis Cluster of `config.cluster`
    /// when it names one, with every key under `prefix` (the node's prefix, e.g.
    /// `comet:`). Checks the URL; connects on first use.
    pub fn new(config: &RedisConfig, prefix: &str) -> Result<RedisQueue, RedisSetupError> {
        let consumer = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let layout = Layout::new(prefix, config.is_cluster());
        let link = Arc::new(Link {
            connection: SharedConnection::new(redis_link::Source::new(config, 2)?, config),
            notice: HubNames::new(prefix).actions().to_owned(),
            consumer,
            node: OnceLock::new(),
            recorded: Mutex::new(BTreeSet::new()),
            patience: config.command_timeout,
            layout,
        });
        let bounds = Bounds {
            buffer: config.queue_buffer,
            buffer_bytes: config.queue_buffer_bytes,
            batch: config.queue_batch,
            batch_bytes: config.batch_bytes,
        };
        Ok(RedisQueue {
            inner: Arc::new(Inner {
                exchange: Batcher::new("call", bounds, Op::size, exchange::send(link.clone())),
                scripts: Scripts::new(&link.layout),
                link,
                config: config.clone(),
                served: Mutex::new(BTreeSet::new()),
                upkeep: Mutex::new(false),
                left: AtomicBool::new(false),
                dead: DeadCount::default(),
            }),
        })
    }

    /// Acknowledges a call, with its answer when given: in the same script on one Redis;
    /// on a cluster through the hub right after, if the call was still held.
    fn acknowledge(
        &self,
        claimed: &Claimed,
        reply: Option<Reply>,
    ) -> BoxFuture<'static, Result<(), QueueError>> {
        let link = self.inner.link.clone();
        let (in_script, after) = if link.layout.is_cluster() {
            (None, reply)
        } else {
            (reply, None)
        };
        let acked = self.inner.exchange.submit(Op::Ack(
            claimed.call.route.clone(),
            claimed.receipt.clone(),
            in_script,
        ));
        async move {
            match acked.await? {
                Outcome::Done(false) => log::warn!(
                    "redis queue: an answered call had been put back meanwhile (this process \
                     was taken for dead, longer than process_ttl without a heartbeat, or gave \
                     it back); it runs again elsewhere, and answers from there"
                ),
                Outcome::Done(true) => {
                    if let (Some(reply), Some(node)) = (after, link.node.get()) {
                        node.hub
                            .publish(&reply.channel, reply.payload)
                            .await
                            .map_err(|err| {
                                unavailable(format!(
                                    "the call is acknowledged but its answer was not \
                                     published ({err}): its caller gets `timeout`"
                                ))
                            })?;
                    }
                }
                Outcome::Taken(..) => return Err(unavailable("an ack answered as a take")),
                Outcome::Failed(err) => return Err(err),
            }
            Ok(())
        }
        .boxed()
    }

    /// This process's name in the queue's keys (its processing list and heartbeat).
    pub fn consumer(&self) -> &str {
        &self.inner.link.consumer
    }

    /// How many queue entries this process has set aside in the dead-letter list
    /// `<prefix>dead` since it started (unreadable calls it took, or found in the
    /// processing list of a dead process): a counter for a metric. Each is also logged.
    pub fn dead_letters(&self) -> u64 {
        self.inner.dead.get()
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one step, so a poisoned lock still guards consistent state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long a queue must keep `call` (at least a second, so a late push never expires a
/// list at once): until its caller gives up.
pub(super) fn time_left(call: &ActionCall) -> u64 {
    call.deadline_ms.saturating_sub(unix_millis()).max(1000)
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(err.to_string())
}

/// The heartbeat task: renews the heartbeat, puts back calls of dead processes; stops
/// when the queue is dropped or has left.
async fn upkeep(queue: Weak<Inner>, interval: std::time::Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        ticks.tick().await;
        let Some(queue) = queue.upgrade() else { break };
        if queue.left.load(Ordering::Relaxed) {
            break;
        }
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
                    self.inner.link.consumer,
                    self.inner.config.describe()
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
        let routes = routes.to_vec();
        async move { inner.withdraw(&routes).await }.boxed()
    }

    fn push(&self, call: ActionCall) -> BoxFuture<'static, Result<(), QueueError>> {
        let entry = match serde_json::to_vec(&call) {
            Ok(entry) => entry,
            Err(err) => {
                return future::ready(Err(QueueError::Corrupt(format!(
                    "cannot encode the call: {err}"
                ))))
                .boxed()
            }
        };
        let pushed =
            self.inner
                .exchange
                .submit(Op::Push(call.route.clone(), entry, time_left(&call)));
        async move {
            match pushed.await? {
                Outcome::Done(true) => Ok(()),
                Outcome::Done(false) => Err(QueueError::NotServed(call.route)),
                Outcome::Taken(..) => Err(unavailable("a push answered as a take")),
                Outcome::Failed(err) => Err(err),
            }
        }
        .boxed()
    }

    fn attach(&self, link: QueueLink) {
        let _ = self.inner.link.node.set(link);
    }

    fn pop(&self, routes: &[String], max: usize) -> BoxFuture<'static, Result<Popped, QueueError>> {
        if routes.is_empty() || max == 0 {
            return future::ready(Ok(Popped::default())).boxed();
        }
        let inner = self.inner.clone();
        let max = max.min(self.inner.config.queue_batch.max(1));
        let taken = self.inner.exchange.submit(Op::Take(max, routes.to_vec()));
        async move {
            match taken.await? {
                Outcome::Taken(more, entries) => Ok(Popped {
                    calls: inner.read(entries).await?,
                    more,
                }),
                Outcome::Done(_) => Err(unavailable("a take answered as a push")),
                Outcome::Failed(err) => Err(err),
            }
        }
        .boxed()
    }

    fn answer(
        &self,
        claimed: &Claimed,
        frame: ByteString,
    ) -> BoxFuture<'static, Result<(), QueueError>> {
        let Some(node) = self.inner.link.node.get() else {
            return future::ready(Err(unavailable("the queue is not attached to a node"))).boxed();
        };
        if node.deliver_locally(claimed, &frame) {
            // Answered already; only the acknowledgement goes to Redis.
            return self.acknowledge(claimed, None);
        }
        let reply = match node.reply(claimed, &frame) {
            Ok(reply) => reply,
            Err(err) => return future::ready(Err(err)).boxed(),
        };
        // After whatever this process published before (the handler's messages), which it
        // must not overtake: on one Redis the answer goes with the acknowledgement, one
        // command for both; on a cluster the hub publishes it right after, and its
        // partitions need not keep order between them, so the flush stays.
        let flushed = node.hub.flush();
        let queue = self.clone();
        let claimed = claimed.clone();
        async move {
            let _ = flushed.await;
            queue.acknowledge(&claimed, Some(reply)).await
        }
        .boxed()
    }

    fn ack(&self, claimed: &Claimed) -> BoxFuture<'static, Result<(), QueueError>> {
        self.acknowledge(claimed, None)
    }

    fn requeue(&self, claimed: &Claimed) -> BoxFuture<'static, Result<bool, QueueError>> {
        let inner = self.inner.clone();
        let claimed = claimed.clone();
        async move { inner.requeue(&claimed).await }.boxed()
    }

    fn leave(&self) -> BoxFuture<'static, Result<u64, QueueError>> {
        self.inner.left.store(true, Ordering::Relaxed);
        let inner = self.inner.clone();
        async move { inner.leave().await }.boxed()
    }

    fn depth(&self, routes: &[String]) -> BoxFuture<'static, Result<u64, QueueError>> {
        let link = self.inner.link.clone();
        let routes = routes.to_vec();
        async move { link.depth(&routes).await }.boxed()
    }

    fn ping(&self) -> BoxFuture<'static, Result<(), QueueError>> {
        let link = self.inner.link.clone();
        async move {
            link.connection
                .ping()
                .await
                .map_err(QueueError::Unavailable)
        }
        .boxed()
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
