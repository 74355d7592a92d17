//! The in-process queue: the default. Clones share one queue, so several nodes in one
//! process can share it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytestring::ByteString;
use futures::future::{self, BoxFuture, FutureExt};

use super::{ActionCall, Claimed, Popped, Queue, QueueError, QueueLink};

#[derive(Default)]
struct State {
    lists: HashMap<String, VecDeque<ActionCall>>,
    /// route → how many nodes serve it.
    served: HashMap<String, usize>,
    /// The hub and connections of the (first) node using the queue: it sends the
    /// "queue updated" notices and the answers through them.
    link: Option<QueueLink>,
}

/// An in-memory [`Queue`]. Calls die with the process, so "at least once" holds only
/// within it; use the Redis queue for calls that must survive a process.
///
/// ```
/// use comet_actors::{MemoryQueue, Queue};
/// let queue = MemoryQueue::new();
/// assert_eq!(queue.name(), "memory");
/// ```
#[derive(Clone, Default)]
pub struct MemoryQueue {
    state: Arc<Mutex<State>>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> MemoryQueue {
        MemoryQueue::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is one step, so a poisoned lock still guards consistent state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls waiting for `route`.
    pub fn len(&self, route: &str) -> usize {
        self.lock().lists.get(route).map_or(0, VecDeque::len)
    }

    /// Whether no call waits at all.
    pub fn is_empty(&self) -> bool {
        self.lock().lists.values().all(VecDeque::is_empty)
    }
}

impl Queue for MemoryQueue {
    fn serve(&self, routes: &[String]) -> BoxFuture<'static, Result<(), QueueError>> {
        let mut state = self.lock();
        for route in routes {
            *state.served.entry(route.clone()).or_default() += 1;
        }
        future::ready(Ok(())).boxed()
    }

    fn retire(&self, routes: &[String]) -> BoxFuture<'static, Result<(), QueueError>> {
        let mut state = self.lock();
        for route in routes {
            if let Some(count) = state.served.get_mut(route) {
                *count -= 1;
                if *count == 0 {
                    state.served.remove(route);
                }
            }
        }
        future::ready(Ok(())).boxed()
    }

    fn attach(&self, link: QueueLink) {
        let mut state = self.lock();
        if state.link.is_none() {
            state.link = Some(link);
        }
    }

    fn push(&self, call: ActionCall) -> BoxFuture<'static, Result<(), QueueError>> {
        let mut state = self.lock();
        if !state.served.contains_key(&call.route) {
            return future::ready(Err(QueueError::NotServed(call.route))).boxed();
        }
        let notified = state.link.as_ref().map(|link| link.notify(&call.route));
        state
            .lists
            .entry(call.route.clone())
            .or_default()
            .push_back(call);
        drop(state);
        async move {
            // The periodic queue check catches a lost notice, so a failed notice is only
            // worth a warning.
            if let Some(Err(err)) = match notified {
                Some(notified) => Some(notified.await),
                None => None,
            } {
                log::warn!("could not notify workers of a queued action: {err}");
            }
            Ok(())
        }
        .boxed()
    }

    fn depth(&self, routes: &[String]) -> BoxFuture<'static, Result<u64, QueueError>> {
        let waiting: usize = routes.iter().map(|route| self.len(route)).sum();
        Box::pin(futures::future::ready(Ok(waiting as u64)))
    }

    fn pop(&self, routes: &[String], max: usize) -> BoxFuture<'static, Result<Popped, QueueError>> {
        let mut state = self.lock();
        let mut calls = Vec::new();
        for route in routes {
            let Some(list) = state.lists.get_mut(route) else {
                continue;
            };
            while calls.len() < max {
                let Some(call) = list.pop_front() else { break };
                calls.push(Claimed {
                    receipt: call.id.clone(),
                    call,
                });
            }
        }
        let more = routes
            .iter()
            .any(|route| state.lists.get(route).is_some_and(|list| !list.is_empty()));
        future::ready(Ok(Popped { calls, more })).boxed()
    }

    fn answer(
        &self,
        claimed: &Claimed,
        frame: ByteString,
    ) -> BoxFuture<'static, Result<(), QueueError>> {
        let Some(link) = self.lock().link.clone() else {
            return future::ready(Err(QueueError::Unavailable(
                "the queue is not attached to a node".into(),
            )))
            .boxed();
        };
        if link.deliver_locally(claimed, &frame) {
            return future::ready(Ok(())).boxed();
        }
        // A caller on another process (nodes sharing this queue through a hub of their
        // own): over that process's hub channel. Nothing to acknowledge: calls live here.
        let sent = link
            .reply(claimed, &frame)
            .map(|reply| link.hub.publish(&reply.channel, reply.payload));
        async move {
            sent?
                .await
                .map_err(|err| QueueError::Unavailable(err.to_string()))
        }
        .boxed()
    }

    fn ack(&self, _claimed: &Claimed) -> BoxFuture<'static, Result<(), QueueError>> {
        // A taken call lives nowhere else: there is nothing to mark.
        future::ready(Ok(())).boxed()
    }

    fn requeue(&self, claimed: &Claimed) -> BoxFuture<'static, Result<bool, QueueError>> {
        // Only the worker holding a claim puts it back, once; there is no reaper here.
        self.lock()
            .lists
            .entry(claimed.call.route.clone())
            .or_default()
            .push_front(claimed.call.clone());
        future::ready(Ok(true)).boxed()
    }

    fn leave(&self) -> BoxFuture<'static, Result<u64, QueueError>> {
        // Calls live and die with the process: nothing is held anywhere else.
        future::ready(Ok(0)).boxed()
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
