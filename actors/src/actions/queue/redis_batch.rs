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
//! Both the items waiting and the items of one batch are bounded in count and in bytes
//! (`queue_buffer`, `queue_buffer_bytes`, `queue_batch`, `batch_bytes`): an item that does
//! not fit the buffer fails at once as `Unavailable`, and its bytes count until Redis
//! answered, so a stalled Redis holds a bounded amount of memory.
//!
//! A task is started on first use, on the tokio runtime of its caller, and started again
//! if that runtime went away (e.g. an HTTP worker thread that stopped); the requests it
//! held then fail as `Unavailable`, like any lost connection.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use futures::future::{self, BoxFuture, FutureExt};
use tokio::sync::mpsc;

use super::QueueError;

/// One item for a batching task, and where its outcome goes.
struct Request<T, R> {
    item: T,
    /// Its size, counted in [`Batcher::held`] until answered.
    bytes: usize,
    done: oneshot::Sender<Result<R, QueueError>>,
}

/// Sends one batch; answers one outcome per item, in order.
pub(super) type SendBatch<T, R> =
    Arc<dyn Fn(Vec<T>) -> BoxFuture<'static, Result<Vec<R>, QueueError>> + Send + Sync>;

/// How big an item is, in bytes, for the byte bounds.
pub(super) type Size<T> = fn(&T) -> usize;

/// The bounds of a [`Batcher`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Most items waiting (or on their way).
    pub(super) buffer: usize,
    /// Most bytes of items waiting or on their way (an item always fits an empty buffer).
    pub(super) buffer_bytes: usize,
    /// Most items in one batch.
    pub(super) batch: usize,
    /// Most bytes in one batch (a larger item goes alone).
    pub(super) batch_bytes: usize,
}

/// A batching task, started on demand.
pub(super) struct Batcher<T, R> {
    what: &'static str,
    bounds: Bounds,
    size: Size<T>,
    /// Bytes of the items submitted and not yet answered.
    held: Arc<AtomicUsize>,
    send: SendBatch<T, R>,
    sender: Mutex<Option<mpsc::Sender<Request<T, R>>>>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// A batcher sending batches with `send`, within `bounds`, items measured by `size`;
    /// `what` names it in errors and logs.
    pub(super) fn new(
        what: &'static str,
        bounds: Bounds,
        size: Size<T>,
        send: SendBatch<T, R>,
    ) -> Batcher<T, R> {
        Batcher {
            what,
            bounds: Bounds {
                buffer: bounds.buffer.max(1),
                buffer_bytes: bounds.buffer_bytes.max(1),
                batch: bounds.batch.max(1),
                batch_bytes: bounds.batch_bytes.max(1),
            },
            size,
            held: Arc::new(AtomicUsize::new(0)),
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
        let bytes = (self.size)(&item);
        let limit = self.bounds.buffer_bytes;
        let reserved = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held.saturating_add(bytes) <= limit).then(|| held + bytes)
            });
        if let Err(held) = reserved {
            return future::ready(Err(QueueError::Unavailable(format!(
                "{held} bytes of {}s already wait for Redis (queue_buffer_bytes is {limit})",
                self.what
            ))))
            .boxed();
        }
        let (done, answer) = oneshot::channel();
        let sent = sender.try_send(Request { item, bytes, done });
        if sent.is_err() {
            release(&self.held, bytes);
        }
        match sent {
            Ok(()) => answer
                .map(|answer| {
                    answer.unwrap_or_else(|_| {
                        Err(QueueError::Unavailable(
                            "the queue's task stopped before answering".into(),
                        ))
                    })
                })
                .boxed(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                future::ready(Err(QueueError::Unavailable(format!(
                    "{} {}s already wait for Redis",
                    self.bounds.buffer, self.what
                ))))
                .boxed()
            }
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
        // What the stopped task held is gone (answered `Unavailable` as it was dropped).
        self.held.store(0, Ordering::Release);
        let (tx, rx) = mpsc::channel(self.bounds.buffer);
        runtime.spawn(run(
            rx,
            self.bounds,
            self.held.clone(),
            self.send.clone(),
            self.what,
        ));
        *sender = Some(tx.clone());
        Ok(tx)
    }
}

/// The task: takes what piled up (within the batch bounds), sends it, answers each,
/// counts its bytes out, repeats.
async fn run<T, R>(
    mut requests: mpsc::Receiver<Request<T, R>>,
    bounds: Bounds,
    held: Arc<AtomicUsize>,
    send: SendBatch<T, R>,
    what: &'static str,
) {
    let mut carry: Option<Request<T, R>> = None;
    loop {
        let first = match carry.take() {
            Some(first) => first,
            None => match requests.recv().await {
                Some(first) => first,
                None => break,
            },
        };
        let mut bytes = first.bytes;
        let mut pending = vec![first];
        while pending.len() < bounds.batch {
            let Ok(next) = requests.try_recv() else { break };
            if bytes + next.bytes > bounds.batch_bytes {
                carry = Some(next);
                break;
            }
            bytes += next.bytes;
            pending.push(next);
        }
        let (items, dones): (Vec<T>, Vec<_>) = pending
            .into_iter()
            .map(|request| (request.item, request.done))
            .unzip();
        answer(send(items), dones).await;
        release(&held, bytes);
    }
    log::debug!("redis queue: {what} task stopped");
}

/// Counts answered bytes out (never below zero: a restarted task starts from zero).
fn release(held: &AtomicUsize, bytes: usize) {
    let _ = held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
        Some(held.saturating_sub(bytes))
    });
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
