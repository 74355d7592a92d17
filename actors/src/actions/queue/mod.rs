//! The action queue: where action calls wait for a worker (jii's `QueueInterface`).
//!
//! A call is pushed by the process holding the caller's connection and popped by any
//! process that serves its route, first come first served. [`MemoryQueue`] is the
//! in-process default; [`RedisQueue`] keeps calls in Redis lists, at least once. Calls
//! are kept per route, so a process never takes a call it cannot run, and a push for a
//! route that no process serves fails at once ([`QueueError::NotServed`]) instead of
//! waiting forever.

mod memory;
mod redis;
mod redis_batch;
mod redis_cluster;
mod redis_cluster_scripts;
mod redis_dead;
mod redis_exchange;
mod redis_layout;
mod redis_scripts;
mod redis_steps;

use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use actix::Recipient;
use bytes::Bytes;
use bytestring::ByteString;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::connections::info::ConnectionInfo;
use crate::hub::process_message::ProcessMessage;
use crate::hub::{Hub, HubError, HubNames};
use crate::protocol::RequestUid;

pub use self::redis::RedisQueue;
pub use memory::MemoryQueue;

/// One action call, as it waits in the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionCall {
    /// Unique id of this call (not the client's `requestUid`, which is only unique per
    /// client).
    pub id: String,
    /// Route such as `site/test`.
    pub route: String,
    /// The client's id for the call, echoed in the answer.
    #[serde(rename = "requestUid")]
    pub request_uid: RequestUid,
    /// The parameters, without `requestUid`.
    pub params: Map<String, Value>,
    /// Who called.
    pub connection: ConnectionInfo,
    /// Unix time in milliseconds after which the caller has been told `timeout`; a worker
    /// drops a call it pops later than this instead of running it.
    pub deadline_ms: u64,
}

impl ActionCall {
    /// Whether the caller has already given up on this call.
    pub fn is_expired(&self) -> bool {
        unix_millis() > self.deadline_ms
    }
}

/// The current Unix time in milliseconds.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A call taken off the queue by a worker, to be [answered](Queue::answer)
/// (or [put back](Queue::requeue) if it cannot be).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The call.
    pub call: ActionCall,
    /// Backend-specific proof of the claim (e.g. the exact list entry in Redis).
    pub receipt: String,
}

/// An action's answer as a hub message for the caller's process, which the Redis queue
/// publishes in the same step as the call's acknowledgement (on a Redis Cluster, through
/// the hub right after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The hub channel of the caller's process (with prefix).
    pub channel: String,
    /// The encoded [`ProcessMessage`].
    pub payload: Bytes,
}

/// What a queue reaches beside itself, given by the node that uses it
/// ([`Queue::attach`]): the hub (for "queue updated" notices and answers to callers on
/// other processes, unless the queue carries them itself) and this process's own
/// connections (answers to local callers go straight to them).
#[derive(Clone)]
pub struct QueueLink {
    /// The node's hub.
    pub hub: Arc<dyn Hub>,
    /// How things are named in it.
    pub names: HubNames,
    /// This process's id.
    pub process_id: String,
    /// This process's connections (its [`Directory`](crate::Directory)).
    pub local: Recipient<ProcessMessage>,
}

impl QueueLink {
    /// Publishes the "queue updated" notice for `route` on the hub.
    pub fn notify(&self, route: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.hub
            .publish(self.names.actions(), Bytes::from(route.to_owned()))
    }

    /// The answer `frame` to `claimed`'s caller as a process message.
    pub fn answer_message(claimed: &Claimed, frame: &ByteString) -> ProcessMessage {
        ProcessMessage::Answer {
            to: claimed.call.connection.id.clone(),
            request_uid: claimed.call.request_uid.clone(),
            frame: frame.to_string(),
        }
    }

    /// Hands the answer straight to the caller when it is a connection of this process
    /// (true), else leaves it to the caller of this (false).
    pub fn deliver_locally(&self, claimed: &Claimed, frame: &ByteString) -> bool {
        if claimed.call.connection.id.process() != self.process_id {
            return false;
        }
        self.local
            .do_send(QueueLink::answer_message(claimed, frame));
        true
    }

    /// The answer to a caller on another process, as the hub message for that process.
    pub fn reply(&self, claimed: &Claimed, frame: &ByteString) -> Result<Reply, QueueError> {
        let message = QueueLink::answer_message(claimed, frame);
        let payload = message
            .encode()
            .map_err(|err| QueueError::Corrupt(err.to_string()))?;
        Ok(Reply {
            channel: self.names.process(claimed.call.connection.id.process()),
            payload: Bytes::from(payload),
        })
    }
}

/// What one [`Queue::pop`] took.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Popped {
    /// The calls taken, oldest first per route.
    pub calls: Vec<Claimed>,
    /// Whether calls still waited on the popped routes right after these were taken (a
    /// hint: the process looks again as soon as a worker is free, without waiting for a
    /// notice; new calls come with their own notice).
    pub more: bool,
}

/// Why a queue operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueueError {
    /// No process serves this route, so the call could never run.
    #[error("no process serves the action route `{0}`")]
    NotServed(String),
    /// The backend (e.g. Redis) cannot be reached now.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// An entry in the queue could not be read; it is set aside, not retried.
    #[error("unreadable queue entry: {0}")]
    Corrupt(String),
}

/// A first-come-first-served queue of action calls shared by the processes of a cluster.
pub trait Queue: Send + Sync + 'static {
    /// Declares that this process runs the given routes (called by the
    /// [`WorkerSupervisor`](crate::WorkerSupervisor) when it starts).
    fn serve(&self, routes: &[String]) -> BoxFuture<'static, Result<(), QueueError>>;

    /// Withdraws a [`serve`](Queue::serve) (on shutdown).
    fn retire(&self, routes: &[String]) -> BoxFuture<'static, Result<(), QueueError>>;

    /// Links the queue to the node that uses it (called once by
    /// [`Node::start`](crate::Node::start), before anything is pushed): what it reaches
    /// besides itself to notify workers and answer callers. A queue shared by several
    /// nodes of one process keeps the first link.
    fn attach(&self, link: QueueLink);

    /// Appends a call to its route's list, and makes sure the workers of every process
    /// serving the route hear of it (a "queue updated" notice on `<prefix>actions`). Calls
    /// pushed by one process are queued in the order of the `push` calls (the call takes
    /// effect before the future is polled).
    fn push(&self, call: ActionCall) -> BoxFuture<'static, Result<(), QueueError>>;

    /// Takes up to `max` calls: the oldest ones of the first of `routes` that has any,
    /// then of the next, and so on.
    fn pop(&self, routes: &[String], max: usize) -> BoxFuture<'static, Result<Popped, QueueError>>;

    /// Sends `frame` (the `action {…}` answer) to the caller of `claimed`, on whichever
    /// process holds it, after whatever this process published before, and marks the
    /// call as answered, so it is never run again: the answer first, or both in one
    /// step, so that a process dying in between has the call run again (at least once),
    /// never lost.
    fn answer(
        &self,
        claimed: &Claimed,
        frame: ByteString,
    ) -> BoxFuture<'static, Result<(), QueueError>>;

    /// Marks a claimed call as done without an answer (its caller gave up on it).
    fn ack(&self, claimed: &Claimed) -> BoxFuture<'static, Result<(), QueueError>>;

    /// Puts a claimed call that will not be answered back at the head of its route's
    /// list, for another worker (e.g. a draining process giving up on a call). Answers
    /// whether it was put back: `false` if this process no longer held it (it was
    /// acknowledged, or already put back by a reaper), so a call is never put back twice.
    fn requeue(&self, claimed: &Claimed) -> BoxFuture<'static, Result<bool, QueueError>>;

    /// This process leaves the queue for good (the last step of a shutdown, once no
    /// worker runs any more): any call it still holds goes back to the head of its
    /// route's list, exactly once, and its heartbeat and registrations are removed, so
    /// that others neither wait `process_ttl` for its calls nor reap it later. Answers how
    /// many calls were put back.
    fn leave(&self) -> BoxFuture<'static, Result<u64, QueueError>>;

    /// Whether the backend answers now (for readiness checks: `GET <prefix>/health/ready`).
    /// The default, for queues in the process, answers yes at once.
    fn ping(&self) -> BoxFuture<'static, Result<(), QueueError>> {
        Box::pin(futures::future::ready(Ok(())))
    }

    /// How many calls wait for `routes` now (their lists' lengths, summed), for the
    /// `comet_queue_depth` metric.
    fn depth(&self, routes: &[String]) -> BoxFuture<'static, Result<u64, QueueError>>;

    /// A short name for logs, e.g. `memory` or `redis`.
    fn name(&self) -> &'static str;
}
