//! The in-process queue: the default. Clones share one queue, so several nodes in one
//! process can share it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{self, BoxFuture, FutureExt};

use super::{ActionCall, Claimed, Queue, QueueError};

#[derive(Default)]
struct State {
    lists: HashMap<String, VecDeque<ActionCall>>,
    /// route → how many nodes serve it.
    served: HashMap<String, usize>,
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

    fn push(&self, call: ActionCall) -> BoxFuture<'static, Result<(), QueueError>> {
        let mut state = self.lock();
        let result = if state.served.contains_key(&call.route) {
            state
                .lists
                .entry(call.route.clone())
                .or_default()
                .push_back(call);
            Ok(())
        } else {
            Err(QueueError::NotServed(call.route))
        };
        future::ready(result).boxed()
    }

    fn pop(&self, routes: &[String]) -> BoxFuture<'static, Result<Option<Claimed>, QueueError>> {
        let mut state = self.lock();
        let call = routes
            .iter()
            .find_map(|route| state.lists.get_mut(route).and_then(VecDeque::pop_front));
        let more = routes
            .iter()
            .any(|route| state.lists.get(route).is_some_and(|list| !list.is_empty()));
        let claimed = call.map(|call| Claimed {
            receipt: call.id.clone(),
            call,
            more,
        });
        future::ready(Ok(claimed)).boxed()
    }

    fn ack(&self, _claimed: &Claimed) -> BoxFuture<'static, Result<(), QueueError>> {
        future::ready(Ok(())).boxed()
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
