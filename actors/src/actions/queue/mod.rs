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
mod redis_dead;
mod redis_scripts;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::connections::info::ConnectionInfo;
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

/// A call taken off the queue by a worker, to be [acknowledged](Queue::ack) once answered
/// (or [put back](Queue::requeue) if it cannot be).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The call.
    pub call: ActionCall,
    /// Backend-specific proof of the claim (e.g. the exact list entry in Redis).
    pub receipt: String,
}

/// An action's answer as a hub message for the caller's process, for a queue that
/// publishes it together with the acknowledgement (see [`Queue::shares_hub`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The hub channel of the caller's process (with prefix).
    pub channel: String,
    /// The encoded [`ProcessMessage`](crate::ProcessMessage).
    pub payload: Bytes,
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

    /// Appends a call to its route's list. Calls pushed by one process are queued in the
    /// order of the `push` calls (the call takes effect before the future is polled).
    fn push(&self, call: ActionCall) -> BoxFuture<'static, Result<(), QueueError>>;

    /// Whether the queue reaches the hub itself (the Redis queue, on the Redis of the
    /// Redis hub): then [`push`](Queue::push) tells the workers of every process that a
    /// call waits (else the node publishes a "queue updated" notice after each push), and
    /// [`ack`](Queue::ack) takes the answer along ([`Reply`]), publishing it in the same
    /// step as the acknowledgement: one command for both.
    fn shares_hub(&self) -> bool {
        false
    }

    /// Takes up to `max` calls: the oldest ones of the first of `routes` that has any,
    /// then of the next, and so on.
    fn pop(&self, routes: &[String], max: usize) -> BoxFuture<'static, Result<Popped, QueueError>>;

    /// Marks a claimed call as answered, so it is never run again. Acknowledge only once
    /// the answer is sent, or with the answer as `reply` (only to a queue that
    /// [`shares_hub`](Queue::shares_hub); others refuse it): a process that dies before
    /// has the call run again (at least once), never lost.
    fn ack(
        &self,
        claimed: &Claimed,
        reply: Option<Reply>,
    ) -> BoxFuture<'static, Result<(), QueueError>>;

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

    /// A short name for logs, e.g. `memory` or `redis`.
    fn name(&self) -> &'static str;
}
