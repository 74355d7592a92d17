//! The Redis queue's steps on a Redis Cluster (the layout of `redis_layout.rs`, the
//! scripts of `redis_cluster_scripts.rs`): each script runs on one slot, a route's or
//! `{consumers}`, and what a script on one Redis does across both is done here in steps,
//! each safe to repeat when a process dies between two of them.
//!
//! - The heartbeat renews `P{consumers}alive:<consumer>`, the consumer set and
//!   `P{consumers}routes:<consumer>` (every route this process may hold calls of: recorded
//!   before its first take on a route), then each served route's `P{r:<route>}served`.
//! - The reaper claims the dead consumers on `{consumers}` (moving them to
//!   `P{consumers}reaping` with a claim that lapses after `process_ttl`, so one reaper gets
//!   each and a reaper that dies midway leaves them for the next), puts back each of their
//!   routes' processing lists (a list already moved is empty), then forgets them.
//! - Notices ("queue updated") and answers go through the node's hub, after the script.

use std::time::{Duration, Instant};

use futures::future::join_all;
use redis::{FromRedisValue, ScriptInvocation};

use super::redis::{Inner, Link};
use super::redis_dead as dead;
use super::{Claimed, QueueError, Reply};

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
async fn query<T: FromRedisValue>(link: &Link, command: &redis::Cmd) -> Result<T, QueueError> {
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

impl Link {
    /// Records `routes` in `P{consumers}routes:<consumer>` (those not recorded yet), so
    /// that a reaper finds their processing lists if this process dies.
    pub(super) async fn record(&self, routes: &[String]) -> Result<(), QueueError> {
        let new: Vec<&String> = {
            let recorded = super::redis::lock(&self.recorded);
            routes.iter().filter(|r| !recorded.contains(*r)).collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        let mut sadd = redis::cmd("SADD");
        sadd.arg(self.layout.routes(&self.consumer)).arg(&new);
        query::<()>(self, &sadd).await?;
        super::redis::lock(&self.recorded).extend(new.into_iter().cloned());
        Ok(())
    }

    /// Publishes the "queue updated" notice for `route` through the node's hub (if the
    /// queue is attached to one; else the workers find the call at their periodic look).
    pub(super) async fn notify(&self, route: &str) {
        if let Some(node) = self.node.get() {
            if let Err(err) = node.notify(route).await {
                log::warn!("redis queue: cannot tell the workers of `{route}`: {err}");
            }
        }
    }

    /// Publishes an answer through the node's hub.
    async fn publish(&self, reply: Reply) -> Result<(), QueueError> {
        let Some(node) = self.node.get() else {
            return Err(QueueError::Unavailable(
                "the queue is not attached to a node".into(),
            ));
        };
        node.hub
            .publish(&reply.channel, reply.payload)
            .await
            .map_err(|err| QueueError::Unavailable(err.to_string()))
    }
}

impl Inner {
    /// The routes this process may hold calls of: recorded, and served.
    fn held_routes(&self) -> Vec<String> {
        let mut routes = super::redis::lock(&self.link.recorded).clone();
        routes.extend(super::redis::lock(&self.served).iter().cloned());
        routes.into_iter().collect()
    }

    /// Renews the heartbeat, the consumer's routes, and each served route.
    pub(super) async fn cluster_heartbeat(&self) -> Result<(), QueueError> {
        let link = &self.link;
        let layout = &link.layout;
        let ttl = self.config.process_ttl.as_millis().max(1) as u64;
        let held = self.held_routes();
        let mut invocation = self.scripts.heartbeat.prepare_invoke();
        invocation
            .key(layout.alive(&link.consumer))
            .key(layout.consumers())
            .key(layout.routes(&link.consumer))
            .arg(&link.consumer)
            .arg(ttl)
            .arg(&held);
        invoke::<()>(link, &invocation).await?;
        super::redis::lock(&link.recorded).extend(held);
        let served: Vec<String> = super::redis::lock(&self.served).iter().cloned().collect();
        let renewed = join_all(served.iter().map(|route| async move {
            let mut invocation = self.scripts.serve.prepare_invoke();
            invocation
                .key(layout.served(route))
                .arg(&link.consumer)
                .arg(ttl);
            invoke::<()>(link, &invocation).await
        }))
        .await;
        renewed.into_iter().collect()
    }

    /// Puts back the calls of dead consumers; answers how many.
    pub(super) async fn cluster_reap(&self) -> Result<u64, QueueError> {
        let link = &self.link;
        let layout = &link.layout;
        let consumers: Vec<String> =
            query(link, redis::cmd("SMEMBERS").arg(layout.consumers())).await?;
        let reaping: Vec<String> = query(
            link,
            redis::cmd("ZRANGE").arg(layout.reaping()).arg(0).arg(-1),
        )
        .await?;
        let mut candidates = consumers;
        candidates.extend(reaping);
        candidates.sort();
        candidates.dedup();
        let mut claim = self.scripts.reap.prepare_invoke();
        claim.key(layout.consumers());
        for id in &candidates {
            claim.key(layout.alive(id));
        }
        for id in &candidates {
            claim.key(layout.routes(id));
        }
        claim
            .key(layout.reaping())
            .arg(&link.consumer)
            .arg(self.config.process_ttl.as_millis().max(1) as u64)
            .arg(&candidates);
        let claimed: Vec<(String, Vec<String>)> = invoke(link, &claim).await?;
        let mut moved = 0;
        for (id, routes) in claimed {
            let (put, set_aside) = self.put_back(&id, &routes, false).await?;
            self.count_dead(set_aside, "held by a dead process");
            moved += put;
            let mut reaped = self.scripts.reaped.prepare_invoke();
            reaped
                .key(layout.reaping())
                .key(layout.routes(&id))
                .arg(&id);
            invoke::<()>(link, &reaped).await?;
        }
        Ok(moved)
    }

    /// Puts back `consumer`'s processing list of each of `routes` (withdrawing it from
    /// their served sets when `leaving`), notifying the routes that got calls back;
    /// answers how many entries moved and how many of them were set aside.
    async fn put_back(
        &self,
        consumer: &str,
        routes: &[String],
        leaving: bool,
    ) -> Result<(u64, u64), QueueError> {
        let link = &self.link;
        let layout = &link.layout;
        let done = join_all(routes.iter().map(|route| async move {
            let mut invocation = self.scripts.put_back.prepare_invoke();
            invocation
                .key(layout.processing(route, consumer))
                .key(layout.queue(route))
                .key(layout.dead(route))
                .arg(self.config.dead_letters_max.max(1))
                .arg(dead::ttl_ms(&self.config));
            if leaving {
                invocation.key(layout.served(route)).arg(consumer);
            }
            let (moved, set_aside): (u64, u64) = invoke(link, &invocation).await?;
            if moved > set_aside {
                link.notify(route).await;
            }
            Ok::<_, QueueError>((moved, set_aside))
        }))
        .await;
        let (mut moved, mut set_aside) = (0, 0);
        for result in done {
            let (m, s) = result?;
            moved += m;
            set_aside += s;
        }
        Ok((moved, set_aside))
    }

    /// Sets an unreadable entry aside, then answers its caller through the hub.
    pub(super) async fn cluster_set_aside(
        &self,
        processing: &str,
        dead_key: &str,
        entry: &[u8],
        answer: Option<Reply>,
    ) -> Result<(), QueueError> {
        let link = &self.link;
        let mut invocation = self.scripts.set_aside.prepare_invoke();
        invocation
            .key(processing)
            .key(dead_key)
            .arg(entry)
            .arg(self.config.dead_letters_max.max(1))
            .arg(dead::ttl_ms(&self.config));
        invoke::<()>(link, &invocation).await?;
        if let Some(answer) = answer {
            if let Err(err) = link.publish(answer).await {
                log::warn!("redis queue: the caller of an unreadable call cannot be told: {err}");
            }
        }
        Ok(())
    }

    /// This process no longer serves `routes`.
    pub(super) async fn cluster_withdraw(&self, routes: &[String]) -> Result<(), QueueError> {
        let link = &self.link;
        let done = join_all(routes.iter().map(|route| async move {
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(link.layout.served(route)).arg(&link.consumer);
            query::<()>(link, &zrem).await
        }))
        .await;
        done.into_iter().collect()
    }

    /// Puts `claimed` back at the head of its queue if still held, then notifies.
    pub(super) async fn cluster_requeue(
        &self,
        claimed: &Claimed,
        ttl: u64,
    ) -> Result<bool, QueueError> {
        let link = &self.link;
        let route = &claimed.call.route;
        let mut invocation = self.scripts.requeue.prepare_invoke();
        invocation
            .key(link.layout.processing(route, &link.consumer))
            .key(link.layout.queue(route))
            .arg(&claimed.receipt)
            .arg(ttl);
        let moved: u8 = invoke(link, &invocation).await?;
        if moved == 1 {
            link.notify(route).await;
        }
        Ok(moved == 1)
    }

    /// Gives back every call this process holds, route by route, then leaves the
    /// consumers. A process dying midway keeps its routes recorded: the reaper finishes.
    pub(super) async fn cluster_leave(&self) -> Result<u64, QueueError> {
        let link = &self.link;
        let layout = &link.layout;
        let routes = self.held_routes();
        let (moved, set_aside) = self.put_back(&link.consumer, &routes, true).await?;
        self.count_dead(set_aside, "held by this process");
        let mut invocation = self.scripts.leave.prepare_invoke();
        invocation
            .key(layout.alive(&link.consumer))
            .key(layout.consumers())
            .key(layout.routes(&link.consumer))
            .arg(&link.consumer);
        invoke::<()>(link, &invocation).await?;
        Ok(moved)
    }
}
