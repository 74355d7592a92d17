//! Actions: what a handler sees ([`action`]), the queue calls wait in ([`queue`]), the
//! [`WorkerSupervisor`](worker_supervisor::WorkerSupervisor) that takes them off it, and
//! the [`ActionWorker`](action_worker::ActionWorker)s that run them.

pub mod action;
pub mod action_worker;
pub mod queue;
pub mod worker_supervisor;
