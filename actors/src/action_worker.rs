//! The action worker: takes calls off the queue and runs them, one at a time.
//!
//! Woken by its [`WorkerSupervisor`], it pops until the queue is empty; for each call it
//! runs the handler of the route with what remains of the caller's timeout, catches
//! errors and panics, sends the answer to the caller's connection (whichever process
//! holds it), and acknowledges the call so that it is never run again.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::FutureExt;

use crate::action::{Action, ActionError, ActionResult};
use crate::codes::ErrorCode;
use crate::node::Node;
use crate::protocol::{action_error_frame, action_response_frame};
use crate::queue::{unix_millis, Claimed, QueueError};
use crate::worker_supervisor::{WorkFound, WorkerIdle, WorkerSupervisor};

/// One action worker.
pub struct ActionWorker {
    index: usize,
    node: Node,
    routes: Arc<[String]>,
    stop: Arc<AtomicBool>,
    supervisor: Addr<WorkerSupervisor>,
    busy: bool,
}

impl ActionWorker {
    /// Worker number `index` for `routes`; the supervisor makes these.
    pub fn new(
        index: usize,
        node: Node,
        routes: Arc<[String]>,
        stop: Arc<AtomicBool>,
        supervisor: Addr<WorkerSupervisor>,
    ) -> ActionWorker {
        ActionWorker {
            index,
            node,
            routes,
            stop,
            supervisor,
            busy: false,
        }
    }
}

impl Actor for ActionWorker {
    type Context = Context<Self>;
}

impl Supervised for ActionWorker {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("action worker {} restarting", self.index);
        self.busy = false;
        self.supervisor.do_send(WorkerIdle(self.index));
    }
}

/// Look at the queue; `route` names the route a notice was about, tried first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake {
    /// The route to try first.
    pub route: Option<String>,
}

impl Handler<Wake> for ActionWorker {
    type Result = ();

    fn handle(&mut self, wake: Wake, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let mut order: Vec<String> = self.routes.to_vec();
        if let Some(first) = wake.route.and_then(|r| order.iter().position(|o| *o == r)) {
            order[..=first].rotate_right(1);
        }
        let node = self.node.clone();
        let stop = self.stop.clone();
        let supervisor = self.supervisor.clone();
        let drain = async move {
            let mut signalled = false;
            while !stop.load(Ordering::Relaxed) {
                match node.queue().pop(&order).await {
                    Ok(Some(claimed)) => {
                        let more = claimed.more;
                        // More wait: have another idle worker look too (once per wake).
                        if more && !std::mem::replace(&mut signalled, true) {
                            supervisor.do_send(WorkFound);
                        }
                        run(&node, claimed).await;
                        // None left: calls queued meanwhile come with their own notice
                        // (and the periodic sweep catches a lost one).
                        if !more {
                            break;
                        }
                    }
                    Ok(None) => break,
                    // The queue logs an outage once; every worker saying so each
                    // second would drown it.
                    Err(err @ QueueError::Unavailable(_)) => {
                        log::debug!("cannot take an action call from the queue: {err}");
                        break;
                    }
                    Err(err) => {
                        log::warn!("cannot take an action call from the queue: {err}");
                        break;
                    }
                }
            }
        };
        ctx.spawn(drain.into_actor(self).map(|(), worker, _| {
            worker.busy = false;
            worker.supervisor.do_send(WorkerIdle(worker.index));
        }));
    }
}

/// Runs one claimed call and answers it.
async fn run(node: &Node, claimed: Claimed) {
    let call = &claimed.call;
    if call.is_expired() {
        log::warn!(
            "action `{}` ({}) from {} waited past its deadline; dropped unrun",
            call.route,
            call.request_uid,
            call.connection.id
        );
    } else {
        let result = match node.router().get(&call.route) {
            Some(handler) => {
                let remaining =
                    Duration::from_millis(call.deadline_ms.saturating_sub(unix_millis()));
                let action = Action::new(call.clone(), node.clone());
                guarded(call.route.clone(), remaining, move || handler.call(action)).await
            }
            None => Err(ActionError::with_code(
                ErrorCode::NotFound,
                format!("no handler for action `{}`", call.route),
            )),
        };
        let frame = match result {
            Ok(value) => action_response_frame(&call.request_uid, value),
            Err(err) => {
                log::info!(
                    "action `{}` ({}) from {} failed: {err}",
                    call.route,
                    call.request_uid,
                    call.connection.id
                );
                action_error_frame(&call.request_uid, err.code(), err.message())
            }
        };
        if let Err(err) = node
            .answer(&call.connection.id, &call.request_uid, frame)
            .await
        {
            log::warn!(
                "cannot answer action `{}` to {}: {err}",
                call.route,
                call.connection.id
            );
        }
    }
    if let Err(err) = node.queue().ack(&claimed).await {
        log::warn!("cannot acknowledge action `{}`: {err}", call.route);
    }
}

/// Runs a handler with a time limit, turning a panic (while starting or while running)
/// into an error answer.
async fn guarded<F>(route: String, limit: Duration, start: F) -> ActionResult
where
    F: FnOnce() -> futures::future::LocalBoxFuture<'static, ActionResult>,
{
    let panicked = |route: &str| {
        log::error!("action handler `{route}` panicked");
        Err(ActionError::failed("the action handler panicked"))
    };
    let future = match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(future) => future,
        Err(_) => return panicked(&route),
    };
    match tokio::time::timeout(limit, AssertUnwindSafe(future).catch_unwind()).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => panicked(&route),
        Err(_) => Err(ActionError::with_code(
            ErrorCode::Timeout,
            format!("the handler did not answer within {} ms", limit.as_millis()),
        )),
    }
}
