//! Batching for the Redis queue: pushes and acknowledgements from every connection and
//! worker of a process go through one small task each, which sends whatever has piled up
//! as one script call.
//!
//! Why: at a few thousand calls per second, a command per call per step costs Redis (and
//! the process) a syscall, a wake-up and a Lua call each. A task that sends one batch at a
//! time batches by itself: while one batch is on its way, the next one piles up, so an
//! idle process sends each call at once and a busy one sends many per round trip. A
//! single task per kind also keeps the calls of one process in order.
//!
//! A task is started on first use, on the tokio runtime of its caller, and started again
//! if that runtime went away (e.g. an HTTP worker thread that stopped); the requests it
//! held then fail as `Unavailable`, like any lost connection.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use futures::future::{self, BoxFuture, FutureExt};
use tokio::sync::mpsc;

use super::QueueError;

/// One item for a batching task, and where its outcome goes.
struct Request<T, R> {
    item: T,
    done: oneshot::Sender<Result<R, QueueError>>,
}

/// Sends one batch; answers one outcome per item, in order.
pub(super) type SendBatch<T, R> =
    Arc<dyn Fn(Vec<T>) -> BoxFuture<'static, Result<Vec<R>, QueueError>> + Send + Sync>;

/// A batching task, started on demand.
pub(super) struct Batcher<T, R> {
    what: &'static str,
    buffer: usize,
    batch: usize,
    send: SendBatch<T, R>,
    sender: Mutex<Option<mpsc::Sender<Request<T, R>>>>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// A batcher sending at most `batch` items at once with `send`, holding at most
    /// `buffer` items waiting; `what` names it in errors and logs.
    pub(super) fn new(
        what: &'static str,
        buffer: usize,
        batch: usize,
        send: SendBatch<T, R>,
    ) -> Batcher<T, R> {
        Batcher {
            what,
            buffer: buffer.max(1),
            batch: batch.max(1),
            send,
            sender: Mutex::new(None),
        }
    }

    /// Queues `item` now (so items of one caller go out in call order); the future
    /// answers its outcome.
    pub(super) fn submit(&self, item: T) -> BoxFuture<'static, Result<R, QueueError>> {
        let sender = match self.sender() {
            Ok(sender) => sender,
            Err(err) => return future::ready(Err(err)).boxed(),
        };
        let (done, answer) = oneshot::channel();
        match sender.try_send(Request { item, done }) {
            Ok(()) => answer
                .map(|answer| {
                    answer.unwrap_or_else(|_| {
                        Err(QueueError::Unavailable(
                            "the queue's task stopped before answering".into(),
                        ))
                    })
                })
                .boxed(),
            Err(mpsc::error::TrySendError::Full(_)) => future::ready(Err(QueueError::Unavailable(
                format!("{} {}s already wait for Redis", self.buffer, self.what),
            )))
            .boxed(),
            Err(mpsc::error::TrySendError::Closed(_)) => future::ready(Err(
                QueueError::Unavailable(format!("the queue's {} task stopped", self.what)),
            ))
            .boxed(),
        }
    }

    /// The running task's sender, starting the task if there is none (or it died).
    fn sender(&self) -> Result<mpsc::Sender<Request<T, R>>, QueueError> {
        let mut sender = self
            .sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(live) = sender.as_ref().filter(|live| !live.is_closed()) {
            return Ok(live.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            QueueError::Unavailable("the Redis queue must be used inside a tokio runtime".into())
        })?;
        let (tx, rx) = mpsc::channel(self.buffer);
        runtime.spawn(run(rx, self.batch, self.send.clone(), self.what));
        *sender = Some(tx.clone());
        Ok(tx)
    }
}

/// The task: takes what piled up (at most `batch`), sends it, answers each, repeats.
async fn run<T, R>(
    mut requests: mpsc::Receiver<Request<T, R>>,
    batch: usize,
    send: SendBatch<T, R>,
    what: &'static str,
) {
    let mut pending = Vec::with_capacity(batch);
    while requests.recv_many(&mut pending, batch).await > 0 {
        let (items, dones): (Vec<T>, Vec<_>) = pending
            .drain(..)
            .map(|request| (request.item, request.done))
            .unzip();
        answer(send(items), dones).await;
    }
    log::debug!("redis queue: {what} task stopped");
}

async fn answer<R>(
    sent: impl Future<Output = Result<Vec<R>, QueueError>>,
    dones: Vec<oneshot::Sender<Result<R, QueueError>>>,
) {
    match sent.await {
        Ok(results) if results.len() == dones.len() => {
            for (done, result) in dones.into_iter().zip(results) {
                let _ = done.send(Ok(result));
            }
        }
        Ok(results) => {
            let err = QueueError::Unavailable(format!(
                "Redis answered {} outcomes for {} requests",
                results.len(),
                dones.len()
            ));
            for done in dones {
                let _ = done.send(Err(err.clone()));
            }
        }
        Err(err) => {
            for done in dones {
                let _ = done.send(Err(err.clone()));
            }
        }
    }
}
