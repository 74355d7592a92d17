//! The action queue: where action calls wait for a worker (jii's `QueueInterface`).
//!
//! A call is pushed by the process holding the caller's connection and popped by any
//! process that serves its route, first come first served. [`MemoryQueue`] is the
//! in-process default; [`RedisQueue`] keeps calls in Redis lists, at least once. Calls are kept per route, so
//! a process never takes a call it cannot run, and a push for a route that no process
//! serves fails at once ([`QueueError::NotServed`]) instead of waiting forever.

mod memory;
mod redis;

use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::connection_info::ConnectionInfo;
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

/// A call taken off the queue by a worker, to be [acknowledged](Queue::ack) once answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The call.
    pub call: ActionCall,
    /// Backend-specific proof of the claim (e.g. the exact list entry in Redis).
    pub receipt: String,
    /// Whether more calls waited on the popped routes right after this one was taken (a
    /// hint: the worker looks again, and has another worker look too, only then; new
    /// calls come with their own notice).
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

    /// Appends a call to its route's list.
    fn push(&self, call: ActionCall) -> BoxFuture<'static, Result<(), QueueError>>;

    /// Takes the oldest call of the first of `routes` that has one.
    fn pop(&self, routes: &[String]) -> BoxFuture<'static, Result<Option<Claimed>, QueueError>>;

    /// Marks a claimed call as answered, so it is never run again.
    fn ack(&self, claimed: &Claimed) -> BoxFuture<'static, Result<(), QueueError>>;

    /// A short name for logs, e.g. `memory` or `redis`.
    fn name(&self) -> &'static str;
}
