//! The worker supervisor: where `listen_actions` is on, it declares this process's routes
//! to the queue, starts the [`ActionWorker`]s (restarted by actix's `Supervisor` if one
//! stops), and wakes them on "queue updated" notices and on a timer, so that a lost
//! notice strands nothing. The timer wakes one idle worker, not all: a worker that finds
//! a call has the next idle one look too ([`WorkFound`]), so a backlog still gets every
//! worker while an idle process costs the queue one look per interval. On shutdown it drains: no new call is taken, running ones may
//! finish for up to `shutdown_timeout`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use futures::channel::oneshot;

use crate::action_worker::{ActionWorker, Wake};
use crate::node::Node;

/// Starts, wakes and drains the action workers of one process.
pub struct WorkerSupervisor {
    node: Node,
    routes: Arc<[String]>,
    workers: Vec<Addr<ActionWorker>>,
    idle: BTreeSet<usize>,
    /// A notice came while every worker was busy: the next idle one looks again.
    missed: bool,
    stop: Arc<AtomicBool>,
    drained: Vec<oneshot::Sender<()>>,
}

impl WorkerSupervisor {
    /// A supervisor for `node`'s routes; [`Node::start`](crate::Node::start) makes it.
    pub fn new(node: Node) -> WorkerSupervisor {
        let routes: Arc<[String]> = node.router().routes().into();
        WorkerSupervisor {
            node,
            routes,
            workers: Vec::new(),
            idle: BTreeSet::new(),
            missed: false,
            stop: Arc::new(AtomicBool::new(false)),
            drained: Vec::new(),
        }
    }

    fn wake(&mut self, index: usize, route: Option<String>) {
        if let Some(worker) = self.workers.get(index) {
            self.idle.remove(&index);
            worker.do_send(Wake { route });
        }
    }

    fn all_idle(&self) -> bool {
        self.idle.len() == self.workers.len()
    }
}

impl Actor for WorkerSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
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
            let routes = self.routes.clone();
            let stop = self.stop.clone();
            let supervisor = ctx.address();
            self.workers.push(Supervisor::start(move |_| {
                ActionWorker::new(index, node, routes, stop, supervisor)
            }));
            self.idle.insert(index);
        }
        // The first sweep picks up calls queued before this process started.
        let interval = self.node.config().queue_poll_interval;
        ctx.run_later(std::time::Duration::ZERO, |supervisor, _| {
            supervisor.handle_sweep()
        });
        ctx.run_interval(interval, |supervisor, _| supervisor.handle_sweep());
    }
}

impl WorkerSupervisor {
    fn handle_sweep(&mut self) {
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        if let Some(index) = self.idle.first().copied() {
            self.wake(index, None);
        }
    }
}

/// From a worker: it found a call, so more may wait; wake another idle worker.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkFound;

impl Handler<WorkFound> for WorkerSupervisor {
    type Result = ();

    fn handle(&mut self, _: WorkFound, _: &mut Context<Self>) {
        self.handle_sweep();
    }
}

/// From the hub: a call for `route` was queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueueUpdated {
    /// The route of the queued call.
    pub route: String,
}

impl Handler<QueueUpdated> for WorkerSupervisor {
    type Result = ();

    fn handle(&mut self, notice: QueueUpdated, _: &mut Context<Self>) {
        if self.stop.load(Ordering::Relaxed) || !self.routes.contains(&notice.route) {
            return;
        }
        match self.idle.first().copied() {
            Some(index) => self.wake(index, Some(notice.route)),
            None => self.missed = true,
        }
    }
}

/// From a worker: it found the queue empty and waits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerIdle(pub usize);

impl Handler<WorkerIdle> for WorkerSupervisor {
    type Result = ();

    fn handle(&mut self, WorkerIdle(index): WorkerIdle, _: &mut Context<Self>) {
        self.idle.insert(index);
        if self.stop.load(Ordering::Relaxed) {
            if self.all_idle() {
                for done in self.drained.drain(..) {
                    let _ = done.send(());
                }
            }
        } else if std::mem::take(&mut self.missed) {
            self.wake(index, None);
        }
    }
}

/// Answered once the supervisor has declared its routes to the queue (see
/// [`Node::ready`](crate::Node::ready)).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Started;

impl Handler<Started> for WorkerSupervisor {
    type Result = ();

    fn handle(&mut self, _: Started, _: &mut Context<Self>) {}
}

/// Stop taking calls; resolves when running calls are done or `shutdown_timeout` passed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for WorkerSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.stop.store(true, Ordering::Relaxed);
        let retired = self.node.queue().retire(&self.routes);
        let timeout = self.node.config().shutdown_timeout;
        let done = if self.all_idle() {
            None
        } else {
            let (tx, rx) = oneshot::channel();
            self.drained.push(tx);
            Some(rx)
        };
        let busy = self.workers.len() - self.idle.len();
        Box::pin(async move {
            if let Err(err) = retired.await {
                log::warn!("cannot withdraw routes from the queue: {err}");
            }
            if let Some(done) = done {
                log::info!("waiting for {busy} running action(s) to finish");
                if tokio::time::timeout(timeout, done).await.is_err() {
                    log::warn!("actions still running after {timeout:?}; abandoning them");
                }
            }
        })
    }
}
