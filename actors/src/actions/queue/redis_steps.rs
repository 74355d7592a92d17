//! The Redis queue's steps besides the exchange: heartbeat, reaper, unreadable entries
//! set aside, retire, requeue, leave, depth. Each runs today's script on one Redis here,
//! or hands over to `redis_cluster.rs` on a Redis Cluster.

use futures::future::join_all;

use super::redis::{lock, time_left, Inner, Link};
use super::redis_dead as dead;
use super::redis_exchange::Entry;
use super::{ActionCall, Claimed, QueueError};
use crate::hub::HubNames;

impl Inner {
    /// Renews the heartbeat and the served routes.
    pub(super) async fn heartbeat(&self) -> Result<(), QueueError> {
        if self.link.layout.is_cluster() {
            return self.cluster_heartbeat().await;
        }
        let link = &self.link;
        let layout = &link.layout;
        let routes: Vec<String> = lock(&self.served).iter().cloned().collect();
        let mut invocation = self.scripts.heartbeat.prepare_invoke();
        invocation
            .key(layout.alive(&link.consumer))
            .key(layout.consumers());
        for route in &routes {
            invocation.key(layout.served(route));
        }
        invocation
            .arg(&link.consumer)
            .arg(self.config.process_ttl.as_millis().max(1) as u64);
        let mut connection = link.connection().await?;
        invocation
            .invoke_async::<()>(&mut connection)
            .await
            .map_err(|err| link.failed(err))
    }

    /// Puts back the calls of dead processes; answers how many.
    pub(super) async fn reap(&self) -> Result<u64, QueueError> {
        if self.link.layout.is_cluster() {
            return self.cluster_reap().await;
        }
        let link = &self.link;
        let mut connection = link.connection().await?;
        let (moved, set_aside) = self
            .scripts
            .reap
            .key(link.layout.consumers())
            .arg(link.layout.prefix())
            .arg(&link.consumer)
            .arg(&link.notice)
            .arg(self.config.dead_letters_max.max(1))
            .arg(dead::ttl_ms(&self.config))
            .invoke_async::<(u64, u64)>(&mut connection)
            .await
            .map_err(|err| link.failed(err))?;
        self.count_dead(set_aside, "held by a dead process");
        Ok(moved)
    }

    /// Counts and logs entries set aside by a script.
    pub(super) fn count_dead(&self, n: u64, whose: &str) {
        if n > 0 {
            self.dead.add(n);
            log::error!(
                "redis queue: {n} unreadable queue entries {whose} moved to the dead-letter \
                 list (`{}`; kept at most {} entries, {} s)",
                self.link.layout.dead("<route>"),
                self.config.dead_letters_max,
                self.config.dead_letters_ttl.as_secs()
            );
        }
    }

    /// Sets an unreadable entry (taken from `route`) aside in the dead-letter list, out of
    /// the processing list, answering its caller at once when the entry names one.
    async fn set_aside(&self, route: &str, entry: &[u8], why: &str) -> Result<(), QueueError> {
        let link = &self.link;
        let layout = &link.layout;
        let dead_key = layout.dead(route);
        let names = match link.node.get() {
            Some(node) if layout.is_cluster() => node.names.clone(),
            _ => HubNames::new(layout.prefix()),
        };
        let answer = dead::answer(&names, entry, why);
        log::error!(
            "redis queue: a queue entry could not be read ({why}); moved to `{dead_key}` (kept \
             at most {} entries, {} s); {}",
            self.config.dead_letters_max,
            self.config.dead_letters_ttl.as_secs(),
            if answer.is_some() {
                "its caller is answered `bad_json`"
            } else {
                "its caller cannot be told"
            }
        );
        let processing = layout.processing(route, &link.consumer);
        if layout.is_cluster() {
            self.cluster_set_aside(&processing, &dead_key, entry, answer)
                .await?;
        } else {
            let pipe =
                dead::set_aside(&dead_key, &processing, entry, answer.as_ref(), &self.config);
            let mut connection = link.connection().await?;
            pipe.query_async::<()>(&mut connection)
                .await
                .map_err(|err| link.failed(err))?;
        }
        self.dead.add(1);
        Ok(())
    }

    /// Reads popped entries; unreadable ones are set aside (and logged), not returned.
    pub(super) async fn read(&self, entries: Vec<Entry>) -> Result<Vec<Claimed>, QueueError> {
        let mut calls = Vec::with_capacity(entries.len());
        for (route, entry) in entries {
            let read = String::from_utf8(entry)
                .map_err(|err| (err.into_bytes(), "not UTF-8".to_owned()))
                .and_then(|text| match serde_json::from_str::<ActionCall>(&text) {
                    Ok(call) => Ok(Claimed {
                        call,
                        receipt: text,
                    }),
                    Err(err) => Err((text.into_bytes(), err.to_string())),
                });
            match read {
                Ok(claimed) => calls.push(claimed),
                Err((entry, why)) => self.set_aside(&route, &entry, &why).await?,
            }
        }
        Ok(calls)
    }
}

impl Inner {
    /// This process no longer serves `routes` ([`Queue::retire`]).
    pub(super) async fn withdraw(&self, routes: &[String]) -> Result<(), QueueError> {
        let link = &self.link;
        if link.layout.is_cluster() {
            return self.cluster_withdraw(routes).await;
        }
        let mut connection = link.connection().await?;
        let mut pipe = redis::pipe();
        for route in routes {
            pipe.zrem(link.layout.served(route), &link.consumer)
                .ignore();
        }
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(|err| link.failed(err))
    }

    /// Puts `claimed` back at the head of its queue if still held ([`Queue::requeue`]).
    pub(super) async fn requeue(&self, claimed: &Claimed) -> Result<bool, QueueError> {
        let link = &self.link;
        let route = &claimed.call.route;
        let ttl = time_left(&claimed.call);
        if link.layout.is_cluster() {
            return self.cluster_requeue(claimed, ttl).await;
        }
        let mut connection = link.connection().await?;
        let moved: u8 = self
            .scripts
            .requeue
            .key(link.layout.processing(route, &link.consumer))
            .key(link.layout.queue(route))
            .arg(&claimed.receipt)
            .arg(&link.notice)
            .arg(route)
            .arg(ttl)
            .invoke_async(&mut connection)
            .await
            .map_err(|err| link.failed(err))?;
        Ok(moved == 1)
    }

    /// Gives back what this process holds and leaves the books ([`Queue::leave`]).
    pub(super) async fn leave(&self) -> Result<u64, QueueError> {
        let link = &self.link;
        if link.layout.is_cluster() {
            return self.cluster_leave().await;
        }
        let layout = &link.layout;
        let routes: Vec<String> = lock(&self.served).iter().cloned().collect();
        let mut invocation = self.scripts.leave.prepare_invoke();
        invocation
            .key(layout.processing("", &link.consumer))
            .key(layout.alive(&link.consumer))
            .key(layout.consumers());
        for route in &routes {
            invocation.key(layout.served(route));
        }
        invocation
            .arg(layout.prefix())
            .arg(&link.consumer)
            .arg(&link.notice)
            .arg(self.config.dead_letters_max.max(1))
            .arg(dead::ttl_ms(&self.config));
        let mut connection = link.connection().await?;
        let (moved, set_aside) = invocation
            .invoke_async::<(u64, u64)>(&mut connection)
            .await
            .map_err(|err| link.failed(err))?;
        self.count_dead(set_aside, "held by this process");
        Ok(moved)
    }
}

impl Link {
    /// How many calls wait for `routes` (`LLEN` of each queue, summed).
    pub(super) async fn depth(&self, routes: &[String]) -> Result<u64, QueueError> {
        let mut connection = self.connection().await?;
        if self.layout.is_cluster() {
            // One command per route: each is routed to its own slot's master.
            let lengths = join_all(routes.iter().map(|route| {
                let mut connection = connection.clone();
                let key = self.layout.queue(route);
                async move {
                    redis::cmd("LLEN")
                        .arg(key)
                        .query_async::<u64>(&mut connection)
                        .await
                }
            }))
            .await;
            let mut sum = 0;
            for length in lengths {
                sum += length.map_err(|err| self.failed(err))?;
            }
            return Ok(sum);
        }
        let mut pipe = redis::pipe();
        for route in routes {
            pipe.llen(self.layout.queue(route));
        }
        let lengths: Vec<u64> = pipe
            .query_async(&mut connection)
            .await
            .map_err(|err| self.failed(err))?;
        Ok(lengths.into_iter().sum())
    }
}
