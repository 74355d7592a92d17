//! The worker supervisor: where `listen_actions` is on, it declares this process's routes
//! to the queue, starts the [`ActionWorker`]s (restarted by actix's `Supervisor` if one
//! stops), takes calls off the queue for them, and drains them on shutdown.
//!
//! **Taking calls.** One pop at a time takes as many calls as there are idle workers
//! (one Redis command for all of them) and hands one to each. A pop happens when there
//! may be something to take: a "queue updated" notice came, the last pop said more calls
//! wait, or the periodic look (`queue_poll_interval`, so that a lost notice strands
//! nothing) is due; and only while a worker is idle, so a busy process leaves calls to
//! the others instead of racing them for every notice. A notice or a pop that said more
//! calls wait points at its routes, and the next pop looks only at those; the periodic
//! look looks at every route (on a Redis Cluster each route is a command of its own on
//! its own node, so looking at empty routes costs). Routes take turns at being looked
//! at first, so that a busy route does not starve the others.
//!
//! **Draining** ([`Drain`]): no new call is taken and the routes are withdrawn; running
//! calls may finish for up to `shutdown_timeout`, and their answers and acknowledgements
//! reach the queue. A call still running then is abandoned: put back on the queue for
//! another process, unanswered (each call is either answered or put back, once). Last,
//! the process leaves the queue ([`Queue::leave`](crate::Queue::leave)): anything it still
//! holds goes back, its heartbeat goes. The heartbeat keeps running until then, so that
//! no other process takes this one for dead and runs its calls a second time meanwhile;
//! if it dies in the middle, its heartbeat expires and the others put back its calls.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix::prelude::*;
use futures::channel::oneshot;

use crate::actions::action::Router;
use crate::actions::action_worker::{Abandon, ActionWorker, Completions, Run, WorkerIdle};
use crate::actions::queue::{Claimed, QueueError};
use crate::hub::bridge::QueueUpdated;
use crate::node::{Drain, Node, Started};

/// Which routes the next pop looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Look {
    /// None: nothing says calls wait.
    Nowhere,
    /// These routes (a notice named them, or the last pop of them said more wait).
    At(BTreeSet<String>),
    /// Every route (at start and at each periodic look).
    Everywhere,
}

impl Look {
    /// Adds `routes` to where to look.
    fn at<'a>(&mut self, routes: impl IntoIterator<Item = &'a String>) {
        match self {
            Look::Everywhere => {}
            Look::At(known) => known.extend(routes.into_iter().cloned()),
            Look::Nowhere => *self = Look::At(routes.into_iter().cloned().collect()),
        }
    }
}

/// Starts, feeds and drains the action workers of one process.
pub struct WorkerSupervisor {
    node: Node,
    router: Router,
    routes: Arc<[String]>,
    workers: Vec<Addr<ActionWorker>>,
    idle: BTreeSet<usize>,
    /// A pop is on its way.
    popping: bool,
    /// Where calls may wait (a notice came, or the last pop said so) since the last pop
    /// began.
    look: Look,
    /// Which route the next pop looks at first.
    turn: usize,
    draining: bool,
    /// The drain ran out of time: calls still arriving go back at once.
    gave_up: bool,
    completions: Completions,
    drained: Vec<oneshot::Sender<()>>,
}

impl WorkerSupervisor {
    /// A supervisor running `router`'s handlers for `node`;
    /// [`Node::start`](crate::Node::start) makes it.
    pub fn new(node: Node, router: Router) -> WorkerSupervisor {
        let routes: Arc<[String]> = router.routes().into();
        WorkerSupervisor {
            node,
            router,
            routes,
            workers: Vec::new(),
            idle: BTreeSet::new(),
            popping: false,
            look: Look::Nowhere,
            turn: 0,
            draining: false,
            gave_up: false,
            completions: Completions::new(),
            drained: Vec::new(),
        }
    }

    /// No worker runs a call and no pop is on its way (whose calls would be run).
    fn quiet(&self) -> bool {
        self.idle.len() == self.workers.len() && !self.popping
    }

    /// Calls may wait anywhere: pop if a worker is free and no pop is on its way.
    fn look(&mut self, ctx: &mut Context<Self>) {
        self.look = Look::Everywhere;
        self.pop(ctx);
    }

    fn pop(&mut self, ctx: &mut Context<Self>) {
        if self.draining
            || self.popping
            || self.look == Look::Nowhere
            || self.idle.is_empty()
            || self.routes.is_empty()
        {
            return;
        }
        let look = std::mem::replace(&mut self.look, Look::Nowhere);
        self.popping = true;
        let mut order = self.routes.to_vec();
        order.rotate_left(self.turn % self.routes.len());
        if let Look::At(routes) = &look {
            order.retain(|route| routes.contains(route));
        }
        self.turn = self.turn.wrapping_add(1);
        let popped = self.node.queue().pop(&order, self.idle.len());
        ctx.spawn(popped.into_actor(self).map(move |result, supervisor, ctx| {
            supervisor.popping = false;
            match result {
                Ok(popped) => {
                    if popped.more {
                        supervisor.look.at(&order);
                    }
                    for claimed in popped.calls {
                        supervisor.dispatch(claimed);
                    }
                }
                // The queue logs an outage once; saying so at every look would
                // drown it.
                Err(err @ QueueError::Unavailable(_)) => {
                    log::debug!("cannot take action calls from the queue: {err}");
                }
                Err(err) => log::warn!("cannot take action calls from the queue: {err}"),
            }
            supervisor.check_drained();
            supervisor.pop(ctx);
        }));
    }

    /// Hands a taken call to an idle worker (a pop takes no more calls than there are).
    fn dispatch(&mut self, claimed: Claimed) {
        let idle = if self.gave_up {
            None
        } else {
            self.idle.pop_first()
        };
        match idle {
            Some(index) => self.workers[index].do_send(Run(claimed)),
            None => {
                if !self.gave_up {
                    log::error!("took an action call with no idle worker; putting it back");
                }
                let queue = self.node.queue().clone();
                self.completions.track(async move {
                    let _ = queue.requeue(&claimed).await;
                });
            }
        }
    }

    fn check_drained(&mut self) {
        if self.draining && self.quiet() {
            for done in self.drained.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

impl Actor for WorkerSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // An actor dropped before it ever ran is started by actix from its drop, to stop
        // it; when that drop comes from the runtime going away (a program that fails to
        // start after building its comet, e.g. on a busy port), there is no runtime to
        // make timers with, and nothing to run: stop without them instead of panicking.
        if tokio::runtime::Handle::try_current().is_err() {
            ctx.stop();
            return;
        }
        if self.routes.is_empty() {
            log::warn!("listen_actions is on but no action route is registered");
        }
        let served = self.node.queue().serve(&self.routes);
        ctx.wait(served.into_actor(self).map(|result, supervisor, _| {
            if let Err(err) = result {
                log::error!(
                    "cannot declare routes {:?} to the queue: {err}",
                    supervisor.routes
                );
            }
        }));
        let count = self.node.config().workers.max(1);
        for index in 0..count {
            let node = self.node.clone();
            let router = self.router.clone();
            let completions = self.completions.clone();
            let idle = ctx.address().recipient();
            self.workers.push(Supervisor::start(move |_| {
                ActionWorker::new(index, node, router, idle, completions)
            }));
            self.idle.insert(index);
        }
        // The first look picks up calls queued before this process started.
        let interval = self.node.config().queue_poll_interval;
        ctx.run_later(std::time::Duration::ZERO, |supervisor, ctx| {
            supervisor.look(ctx)
        });
        ctx.run_interval(interval, |supervisor, ctx| supervisor.look(ctx));
    }
}

impl Handler<QueueUpdated> for WorkerSupervisor {
    type Result = ();

    fn handle(&mut self, notice: QueueUpdated, ctx: &mut Context<Self>) {
        if self.routes.contains(&notice.route) {
            self.look.at([&notice.route]);
            self.pop(ctx);
        }
    }
}

impl Handler<WorkerIdle> for WorkerSupervisor {
    type Result = ();

    fn handle(&mut self, WorkerIdle(index): WorkerIdle, ctx: &mut Context<Self>) {
        self.idle.insert(index);
        self.check_drained();
        self.pop(ctx);
    }
}

impl Handler<Started> for WorkerSupervisor {
    type Result = ();

    fn handle(&mut self, _: Started, _: &mut Context<Self>) {}
}

impl Handler<Drain> for WorkerSupervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        let queue = self.node.queue().clone();
        let retired = queue.retire(&self.routes);
        let timeout = self.node.config().shutdown_timeout;
        let done = if self.quiet() {
            None
        } else {
            let (tx, rx) = oneshot::channel();
            self.drained.push(tx);
            Some(rx)
        };
        let busy = self.workers.len() - self.idle.len();
        let completions = self.completions.clone();
        let finished = async move {
            if let Err(err) = retired.await {
                log::warn!("cannot withdraw routes from the queue: {err}");
            }
            if let Some(done) = done {
                log::info!("waiting up to {timeout:?} for {busy} running action(s) to finish");
                if tokio::time::timeout(timeout, done).await.is_err() {
                    return false;
                }
            }
            // Answers and acknowledgements of the finished ones.
            tokio::time::timeout(timeout, completions.settled())
                .await
                .is_ok()
        };
        Box::pin(
            finished
                .into_actor(self)
                .then(move |finished, supervisor, _| {
                    let abandoned: Vec<_> = if finished {
                        Vec::new()
                    } else {
                        supervisor.gave_up = true;
                        let busy: Vec<usize> = (0..supervisor.workers.len())
                            .filter(|index| !supervisor.idle.contains(index))
                            .collect();
                        log::warn!(
                            "{} action(s) still running after {timeout:?}: putting them back \
                             for another process",
                            busy.len()
                        );
                        busy.into_iter()
                            .map(|index| supervisor.workers[index].send(Abandon))
                            .collect()
                    };
                    leave(
                        abandoned,
                        supervisor.completions.clone(),
                        supervisor.node.queue().clone(),
                        timeout,
                    )
                    .into_actor(supervisor)
                }),
        )
    }
}

/// The end of a drain: waits for the abandoned calls to be put back and for every answer
/// and put-back to reach the queue (up to `timeout`), then leaves the queue.
async fn leave(
    abandoned: Vec<Request<ActionWorker, Abandon>>,
    completions: Completions,
    queue: Arc<dyn crate::actions::queue::Queue>,
    timeout: std::time::Duration,
) {
    futures::future::join_all(abandoned).await;
    if tokio::time::timeout(timeout, completions.settled())
        .await
        .is_err()
    {
        log::warn!(
            "{} answer(s) or put-back(s) still unconfirmed by the queue after {timeout:?}",
            completions.pending()
        );
    }
    match queue.leave().await {
        Ok(0) => log::info!("left the action queue"),
        Ok(moved) => {
            log::warn!("left the action queue, putting back {moved} call(s) it still held")
        }
        Err(err) => log::warn!(
            "cannot leave the action queue ({err}); calls it still holds go back when its \
             heartbeat expires"
        ),
    }
}
