//! The exchange: what a process has for the Redis queue at one moment (acknowledgements,
//! pushes, takes), sent as one batch by the batching task (`redis_batch.rs`).
//!
//! On one Redis a batch is one call of `redis_scripts::EXCHANGE`. On a Redis Cluster it
//! is one `redis_cluster_scripts::EXCHANGE` per route, all sent at once over the shared
//! cluster connection: first every route's acknowledgements and pushes, then the takes
//! (a take goes through its routes in order, the next only if the last had fewer calls
//! than wanted). The "queue updated" notices of pushes into empty queues then go out
//! through the node's hub before the pushes are answered.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::{join_all, FutureExt};
use redis::{FromRedisValue, Script};

use super::redis::Link;
use super::redis_batch::SendBatch;
use super::redis_cluster::invoke;
use super::redis_cluster_scripts as cluster_scripts;
use super::redis_scripts as scripts;
use super::{QueueError, Reply};

/// One operation of an exchange.
pub(super) enum Op {
    /// Acknowledge a call (route, entry), publishing its answer if any.
    Ack(String, String, Option<Reply>),
    /// Push a call (route, entry, ms before its caller gives up).
    Push(String, Vec<u8>, u64),
    /// Take up to `max` calls from these queues' routes.
    Take(usize, Vec<String>),
}

impl Op {
    /// Its bytes, for the queue's byte bounds.
    pub(super) fn size(&self) -> usize {
        match self {
            Op::Ack(_, entry, reply) => {
                entry.len()
                    + reply
                        .as_ref()
                        .map_or(0, |r| r.channel.len() + r.payload.len())
            }
            Op::Push(route, entry, _) => route.len() + entry.len(),
            Op::Take(_, routes) => routes.iter().map(String::len).sum(),
        }
    }
}

/// A taken entry and the route it was taken from (empty on one Redis, where it is not
/// needed: one processing list and one dead list hold every route's).
pub(super) type Entry = (String, Vec<u8>);

/// What Redis answered to one [`Op`].
pub(super) enum Outcome {
    /// Acknowledged (false: it was no longer held), or pushed (false: not served).
    Done(bool),
    /// Taken entries, and whether more wait.
    Taken(bool, Vec<Entry>),
    /// On a cluster, this operation's route failed (the other routes of its batch may
    /// have gone through).
    Failed(QueueError),
}

impl Outcome {
    fn read(value: redis::Value) -> Result<Outcome, QueueError> {
        use redis::Value;
        match value {
            Value::Int(n) => Ok(Outcome::Done(n >= 1)),
            Value::Array(parts) => read_take(Value::Array(parts), "")
                .map(|(more, entries)| Outcome::Taken(more, entries)),
            other => Err(unexpected(other)),
        }
    }
}

fn read_take(value: redis::Value, route: &str) -> Result<(bool, Vec<Entry>), QueueError> {
    match <(u8, Vec<Vec<u8>>)>::from_redis_value(value) {
        Ok((more, entries)) => Ok((
            more == 1,
            entries
                .into_iter()
                .map(|entry| (route.to_owned(), entry))
                .collect(),
        )),
        Err(err) => Err(QueueError::Unavailable(format!(
            "unexpected answer to a take: {err}"
        ))),
    }
}

fn unexpected(value: redis::Value) -> QueueError {
    QueueError::Unavailable(format!(
        "unexpected answer from the queue script: {value:?}"
    ))
}

/// Sends a batch of operations as the layout wants it.
pub(super) fn send(link: Arc<Link>) -> SendBatch<Op, Outcome> {
    if link.layout.is_cluster() {
        let script = Arc::new(Script::new(cluster_scripts::EXCHANGE));
        Arc::new(move |ops: Vec<Op>| send_cluster(link.clone(), script.clone(), ops).boxed())
    } else {
        send_single(link)
    }
}

/// One Redis: one EXCHANGE script call.
fn send_single(link: Arc<Link>) -> SendBatch<Op, Outcome> {
    let script = Arc::new(Script::new(scripts::EXCHANGE));
    Arc::new(move |ops: Vec<Op>| {
        let (link, script) = (link.clone(), script.clone());
        async move {
            let mut invocation = script.prepare_invoke();
            invocation
                .arg(link.layout.prefix())
                .arg(&link.notice)
                .arg(link.layout.processing("", &link.consumer));
            for op in &ops {
                match op {
                    Op::Ack(_, entry, reply) => {
                        invocation.arg("a").arg(entry);
                        match reply {
                            Some(reply) => {
                                invocation.arg(&reply.channel).arg(reply.payload.as_ref())
                            }
                            None => invocation.arg("").arg(""),
                        };
                    }
                    Op::Push(route, entry, ttl) => {
                        invocation.arg("p").arg(route).arg(entry).arg(*ttl);
                    }
                    Op::Take(max, routes) => {
                        invocation.arg("t").arg(*max).arg(routes.len());
                        for route in routes {
                            invocation.arg(route);
                        }
                    }
                }
            }
            let mut connection = link.connection().await?;
            let values: Vec<redis::Value> = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(|err| link.failed(err))?;
            values.into_iter().map(Outcome::read).collect()
        }
        .boxed()
    })
}

/// A cluster: one script per route for the acknowledgements and pushes, then the takes,
/// then the notices.
async fn send_cluster(
    link: Arc<Link>,
    script: Arc<Script>,
    ops: Vec<Op>,
) -> Result<Vec<Outcome>, QueueError> {
    let mut outcomes: Vec<Option<Outcome>> = ops.iter().map(|_| None).collect();
    // Acknowledgements and pushes, grouped per route in their order.
    let mut routes: BTreeMap<&str, (redis::ScriptInvocation<'_>, Vec<usize>)> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let route = match op {
            Op::Ack(route, ..) | Op::Push(route, ..) => route.as_str(),
            Op::Take(..) => continue,
        };
        let (invocation, positions) = routes.entry(route).or_insert_with(|| {
            let mut invocation = script.prepare_invoke();
            invocation
                .key(link.layout.queue(route))
                .key(link.layout.processing(route, &link.consumer))
                .key(link.layout.served(route));
            (invocation, Vec::new())
        });
        match op {
            Op::Ack(_, entry, _) => invocation.arg("a").arg(entry),
            Op::Push(_, entry, ttl) => invocation.arg("p").arg(entry).arg(*ttl),
            Op::Take(..) => continue,
        };
        positions.push(i);
    }
    let sent = join_all(routes.iter().map(|(route, (invocation, _))| {
        let link = link.clone();
        async move {
            let values: Vec<redis::Value> = invoke(&link, invocation).await?;
            Ok::<_, QueueError>((*route, values))
        }
    }))
    .await;
    let mut notices = Vec::new();
    for (answer, (_, positions)) in sent.into_iter().zip(routes.values()) {
        let values = answer.and_then(|(route, values)| {
            if values.len() == positions.len() {
                Ok((route, values))
            } else {
                Err(QueueError::Unavailable(format!(
                    "Redis answered {} outcomes for {} operations on `{route}`",
                    values.len(),
                    positions.len()
                )))
            }
        });
        // A route that failed fails its own operations only.
        let (route, values) = match values {
            Ok(answered) => answered,
            Err(err) => {
                for &i in positions {
                    outcomes[i] = Some(Outcome::Failed(err.clone()));
                }
                continue;
            }
        };
        for (value, &i) in values.into_iter().zip(positions) {
            outcomes[i] = Some(match value {
                redis::Value::Int(n) => {
                    if n == 2 {
                        notices.push(route.to_owned());
                    }
                    Outcome::Done(n >= 1)
                }
                other => Outcome::Failed(unexpected(other)),
            });
        }
    }
    // The takes, each through its routes in order.
    let takes = ops.iter().enumerate().filter_map(|(i, op)| match op {
        Op::Take(max, routes) => Some((i, *max, routes)),
        _ => None,
    });
    let taken = join_all(takes.map(|(i, max, routes)| {
        let (link, script) = (link.clone(), script.clone());
        async move { (i, take(&link, &script, max, routes).await) }
    }))
    .await;
    for (i, taken) in taken {
        outcomes[i] = Some(match taken {
            Ok((more, entries)) => Outcome::Taken(more, entries),
            Err(err) => Outcome::Failed(err),
        });
    }
    notices.dedup();
    join_all(notices.iter().map(|route| link.notify(route))).await;
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.ok_or_else(|| QueueError::Unavailable("an operation went unanswered".into()))
        })
        .collect()
}

/// Takes up to `max` calls from `routes` on a cluster: the oldest of the first route that
/// has any, then of the next.
async fn take(
    link: &Link,
    script: &Script,
    max: usize,
    routes: &[String],
) -> Result<(bool, Vec<Entry>), QueueError> {
    link.record(routes).await?;
    let mut taken = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let need = max.saturating_sub(taken.len());
        if need == 0 {
            // If that cannot be told, say more wait: the process looks again.
            let more = link
                .depth(&routes[i..])
                .await
                .map_or(true, |depth| depth > 0);
            return Ok((more, taken));
        }
        let mut invocation = script.prepare_invoke();
        invocation
            .key(link.layout.queue(route))
            .key(link.layout.processing(route, &link.consumer))
            .key(link.layout.served(route))
            .arg("t")
            .arg(need);
        let answered = invoke::<Vec<redis::Value>>(link, &invocation)
            .await
            .and_then(|values| match values.into_iter().next() {
                Some(value) => read_take(value, route),
                None => Err(QueueError::Unavailable("a take went unanswered".into())),
            });
        let (more, mut entries) = match answered {
            Ok(answered) => answered,
            // What the earlier routes gave is this process's now: hand it over, and look
            // again soon.
            Err(err) if !taken.is_empty() => {
                log::warn!("redis queue: a take stopped at `{route}`: {err}");
                return Ok((true, taken));
            }
            Err(err) => return Err(err),
        };
        taken.append(&mut entries);
        if more {
            return Ok((true, taken));
        }
    }
    Ok((false, taken))
}
