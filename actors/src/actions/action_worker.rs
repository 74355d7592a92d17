//! The action worker: runs one claimed call at a time, handed to it by its
//! [`WorkerSupervisor`](crate::WorkerSupervisor).
//!
//! For each call it runs the handler of the route with what remains of the caller's
//! timeout, catches errors and panics, sends the answer to the caller's connection
//! (whichever process holds it), and acknowledges the call so that it is never run again:
//! after the answer was sent, or, with the Redis queue, together with the answer in one
//! command (after anything the handler published, so that the answer overtakes nothing).
//! It does not wait for Redis to confirm either before it takes the next call: those
//! confirmations are [`Completions`], which a drain waits for. A call it is told to
//! [`Abandon`] (a drain that ran out of time) is put back on the queue for another
//! process instead of being answered: never both, never twice.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::FutureExt;
use tokio::sync::watch;

use crate::actions::action::{Action, ActionError, ActionResult, Router};
use crate::actions::queue::{unix_millis, Claimed};
use crate::codes::ErrorCode;
use crate::node::Node;
use crate::protocol::{action_error_frame, action_response_frame};

/// To the supervisor: worker `0` is done with its call (answered, or put back) and waits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerIdle(pub usize);

/// Answers, acknowledgements and put-backs on their way to the hub and the queue, counted
/// so that a drain can wait until every one of them is confirmed.
#[derive(Clone)]
pub struct Completions(Arc<watch::Sender<usize>>);

impl Completions {
    /// None yet.
    pub fn new() -> Completions {
        Completions(Arc::new(watch::channel(0).0))
    }

    /// Runs `work` on the current thread, counted until it ends.
    pub fn track(&self, work: impl Future<Output = ()> + 'static) {
        self.0.send_modify(|count| *count += 1);
        let count = self.0.clone();
        actix::spawn(async move {
            work.await;
            count.send_modify(|count| *count -= 1);
        });
    }

    /// How many are on their way now.
    pub fn pending(&self) -> usize {
        *self.0.borrow()
    }

    /// Resolves once none is on its way.
    pub async fn settled(&self) {
        let mut count = self.0.subscribe();
        let _ = count.wait_for(|count| *count == 0).await;
    }
}

impl Default for Completions {
    fn default() -> Self {
        Completions::new()
    }
}

/// One action worker.
pub struct ActionWorker {
    index: usize,
    node: Node,
    router: Router,
    supervisor: Recipient<WorkerIdle>,
    completions: Completions,
    /// The call running now, and the handle of its future.
    current: Option<(Claimed, SpawnHandle)>,
    /// When the current call started (for `comet_action_duration_seconds`).
    started: std::time::Instant,
}

impl ActionWorker {
    /// Worker number `index`, running `router`'s handlers and telling `supervisor` when
    /// it is idle; the supervisor makes these.
    pub fn new(
        index: usize,
        node: Node,
        router: Router,
        supervisor: Recipient<WorkerIdle>,
        completions: Completions,
    ) -> ActionWorker {
        ActionWorker {
            index,
            node,
            router,
            supervisor,
            completions,
            current: None,
            started: std::time::Instant::now(),
        }
    }

    /// The handler ended: send the answer now, acknowledge once it is sent, take the next.
    fn finish(&mut self, result: ActionResult) {
        let Some((claimed, _)) = self.current.take() else {
            return; // abandoned meanwhile: put back instead
        };
        let call = &claimed.call;
        let metrics = &crate::metrics::METRICS;
        metrics.actions_running.dec();
        let outcome = match &result {
            Ok(_) => "ok",
            // A handler's own codes could be anything: one label value for them all.
            Err(err) if matches!(err.code(), ErrorCode::Custom(_)) => "custom",
            Err(err) => err.code().as_str(),
        };
        metrics.action_done(&call.route, outcome, self.started.elapsed());
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
        // The queue delivers the answer (after whatever the handler published) and
        // acknowledges the call: never acknowledged before the answer left, so a process
        // dying in between has the call run again (at least once), never lost.
        let answered = self.node.queue().answer(&claimed, frame);
        self.completions.track(async move {
            if let Err(err) = answered.await {
                log::warn!(
                    "cannot answer action `{}` to {}: {err}",
                    claimed.call.route,
                    claimed.call.connection.id
                );
            }
        });
        self.supervisor.do_send(WorkerIdle(self.index));
    }

    /// Puts the current call (if any) back on the queue, unanswered.
    fn give_back(&mut self, why: &str, ctx: &mut Context<Self>) {
        let Some((claimed, handle)) = self.current.take() else {
            return;
        };
        ctx.cancel_future(handle);
        crate::metrics::METRICS.actions_running.dec();
        log::warn!(
            "action `{}` ({}) from {}: {why}; putting it back for another process",
            claimed.call.route,
            claimed.call.request_uid,
            claimed.call.connection.id
        );
        let queue = self.node.queue().clone();
        self.completions.track(async move {
            match queue.requeue(&claimed).await {
                Ok(true) => {}
                Ok(false) => log::warn!(
                    "action `{}` was no longer held by this process (put back already)",
                    claimed.call.route
                ),
                Err(err) => log::warn!(
                    "cannot put back action `{}` now ({err}); it goes back when this process \
                     leaves the queue, or when its heartbeat expires",
                    claimed.call.route
                ),
            }
        });
    }
}

impl Actor for ActionWorker {
    type Context = Context<Self>;
}

impl Supervised for ActionWorker {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        log::warn!("action worker {} restarting", self.index);
        self.give_back("its worker restarted", ctx);
        self.supervisor.do_send(WorkerIdle(self.index));
    }
}

/// Run this call (the supervisor took it off the queue for this worker).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Run(pub Claimed);

impl Handler<Run> for ActionWorker {
    type Result = ();

    fn handle(&mut self, Run(claimed): Run, ctx: &mut Context<Self>) {
        if self.current.is_some() {
            // The supervisor hands calls to idle workers only; stay total anyway.
            log::error!("action worker {} got a call while busy", self.index);
            let queue = self.node.queue().clone();
            self.completions.track(async move {
                let _ = queue.requeue(&claimed).await;
            });
            return;
        }
        let call = &claimed.call;
        if call.is_expired() {
            log::warn!(
                "action `{}` ({}) from {} waited past its deadline; dropped unrun",
                call.route,
                call.request_uid,
                call.connection.id
            );
            let queue = self.node.queue().clone();
            self.completions.track(async move {
                if let Err(err) = queue.ack(&claimed).await {
                    log::warn!("cannot acknowledge action `{}`: {err}", claimed.call.route);
                }
            });
            self.supervisor.do_send(WorkerIdle(self.index));
            return;
        }
        let running = match self.router.get(&call.route) {
            Some(_)
                if self.router.requires_user(&call.route) && call.connection.user().is_none() =>
            {
                let message = format!("action `{}` needs an authenticated caller", call.route);
                async move { Err(ActionError::with_code(ErrorCode::NotAuthenticated, message)) }
                    .boxed_local()
            }
            Some(handler) => {
                let remaining =
                    Duration::from_millis(call.deadline_ms.saturating_sub(unix_millis()));
                let action = Action::new(call.clone(), self.node.clone());
                guarded(call.route.clone(), remaining, move || handler.call(action)).boxed_local()
            }
            None => {
                let message = format!("no handler for action `{}`", call.route);
                async move { Err(ActionError::with_code(ErrorCode::NotFound, message)) }
                    .boxed_local()
            }
        };
        let handle = ctx.spawn(
            running
                .into_actor(self)
                .map(|result, worker, _| worker.finish(result)),
        );
        self.current = Some((claimed, handle));
        self.started = std::time::Instant::now();
        crate::metrics::METRICS.actions_running.inc();
    }
}

/// Stop the current call and put it back on the queue, unanswered (a drain ran out of
/// time). Answered once the put-back is under way.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abandon;

impl Handler<Abandon> for ActionWorker {
    type Result = ();

    fn handle(&mut self, _: Abandon, ctx: &mut Context<Self>) {
        if self.current.is_some() {
            self.give_back("still running when shutdown_timeout ran out", ctx);
            self.supervisor.do_send(WorkerIdle(self.index));
        }
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
