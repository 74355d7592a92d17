//! What both Redis hubs (one Redis, or a Redis Cluster) keep in Redis beside pub/sub:
//! channels' history and presence, run as scripts on one shared multiplexed connection
//! (`SharedConnection`: a pooled connection, or the cluster's connection routed by each
//! script's first key), and the byte-bounded buffer that their publishes share with the
//! hub's plain publishes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{self, BoxFuture, FutureExt};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::history::{HistoryPage, HistoryPolicy, HistoryQuery, Position};
use super::presence::{Events, PresenceStats, PresenceUpdate, PresenceWritten};
use super::redis_history::{self, HistoryPublish};
use super::redis_presence::{presence_task, Operation, PresenceOperation};
use super::{HistoryKeys, HubError, PresenceKeys};
use crate::config::RedisConfig;
use crate::redis_link::SharedConnection;

/// What the publishes not yet answered hold, shared by the hub (which counts them in)
/// and its tasks (which count them out once Redis answered).
#[derive(Default)]
pub(super) struct Buffered {
    /// Publishes queued and not yet answered, so that a flush with none skips the queue.
    pub(super) messages: AtomicUsize,
    /// Their bytes (channel names and payloads), bounded by `publish_buffer_bytes`.
    pub(super) bytes: AtomicUsize,
}

impl Buffered {
    /// Counts one more publish of `bytes` in, unless the bytes already buffered leave no
    /// room for it within `limit` (a publish always fits an empty buffer); else answers
    /// those bytes.
    pub(super) fn reserve(&self, bytes: usize, limit: usize) -> Result<(), usize> {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held.saturating_add(bytes) <= limit).then(|| held + bytes)
            })?;
        self.messages.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Counts answered (or refused) publishes out.
    pub(super) fn release(&self, messages: usize, bytes: usize) {
        self.messages.fetch_sub(messages, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Whether no publish waits for an answer.
    pub(super) fn is_empty(&self) -> bool {
        self.messages.load(Ordering::Acquire) == 0
    }
}

/// The receiving ends, handed to the tasks when the hub starts.
struct Pending {
    history: mpsc::Receiver<HistoryPublish>,
    presence: mpsc::Receiver<PresenceOperation>,
}

/// History and presence in Redis, for a Redis hub.
pub(super) struct RedisStore {
    config: Arc<RedisConfig>,
    /// The hub's publish buffer, which publishes with history count in too.
    pub(super) buffered: Arc<Buffered>,
    /// Publishes with history, for their own task (see `redis_history.rs`).
    history: mpsc::Sender<HistoryPublish>,
    /// Presence operations, for their own task (see `redis_presence.rs`).
    presence: mpsc::Sender<PresenceOperation>,
    /// The connection of history publishes and reads, and of presence.
    pub(super) shared: Arc<SharedConnection>,
    pending: Mutex<Option<Pending>>,
}

impl RedisStore {
    pub(super) fn new(config: Arc<RedisConfig>, shared: Arc<SharedConnection>) -> RedisStore {
        let (history, history_rx) = mpsc::channel(config.publish_buffer.max(1));
        let (presence, presence_rx) = mpsc::channel(config.publish_buffer.max(1));
        RedisStore {
            config,
            buffered: Arc::new(Buffered::default()),
            history,
            presence,
            shared,
            pending: Mutex::new(Some(Pending {
                history: history_rx,
                presence: presence_rx,
            })),
        }
    }

    /// Starts the history and presence tasks on `runtime` (once).
    pub(super) fn start(&self, runtime: &Handle) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(pending) = pending else { return };
        let buffered = self.buffered.clone();
        runtime.spawn(redis_history::history_publisher(
            self.shared.clone(),
            self.config.clone(),
            pending.history,
            move |messages, bytes| buffered.release(messages, bytes),
        ));
        runtime.spawn(presence_task(
            self.shared.clone(),
            self.config.clone(),
            pending.presence,
        ));
    }

    /// See [`Hub::ping`](super::Hub::ping).
    pub(super) fn ping(&self) -> BoxFuture<'static, Result<(), HubError>> {
        let shared = self.shared.clone();
        async move { shared.ping().await.map_err(HubError::Unavailable) }.boxed()
    }

    /// Counts a publish of `bytes` in, or says why it does not fit.
    pub(super) fn reserve(&self, bytes: usize) -> Result<(), HubError> {
        self.buffered
            .reserve(bytes, self.config.publish_buffer_bytes)
            .map_err(|held| {
                HubError::Unavailable(format!(
                    "{held} bytes of publishes already wait for Redis (publish_buffer_bytes \
                     is {})",
                    self.config.publish_buffer_bytes
                ))
            })
    }

    /// See [`Hub::publish_positioned`](super::Hub::publish_positioned).
    pub(super) fn publish_positioned(
        &self,
        keys: &HistoryKeys,
        payload: Bytes,
        policy: HistoryPolicy,
    ) -> BoxFuture<'static, Result<Position, HubError>> {
        let bytes = keys.channel.len() + keys.stream.len() + keys.meta.len() + payload.len();
        if let Err(err) = self.reserve(bytes) {
            return future::ready(Err(err)).boxed();
        }
        let (done, answer) = oneshot::channel();
        let publish = HistoryPublish {
            keys: keys.clone(),
            payload,
            policy,
            bytes,
            done,
        };
        match self.history.try_send(publish) {
            Ok(()) => answer
                .map(|answer| answer.unwrap_or(Err(HubError::NotRunning)))
                .boxed(),
            Err(err) => {
                self.buffered.release(1, bytes);
                let why = match err {
                    mpsc::error::TrySendError::Full(_) => HubError::Unavailable(format!(
                        "{} publishes with history already wait for Redis",
                        self.config.publish_buffer
                    )),
                    mpsc::error::TrySendError::Closed(_) => HubError::NotRunning,
                };
                future::ready(Err(why)).boxed()
            }
        }
    }

    /// See [`Hub::history`](super::Hub::history).
    pub(super) fn history(
        &self,
        keys: &HistoryKeys,
        query: HistoryQuery,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<HistoryPage, HubError>> {
        let (shared, config, keys) = (self.shared.clone(), self.config.clone(), keys.clone());
        async move { redis_history::read(&shared, &config, &keys, query, ttl).await }.boxed()
    }

    /// See [`Hub::presence_update`](super::Hub::presence_update).
    pub(super) fn presence_update(
        &self,
        keys: &PresenceKeys,
        update: PresenceUpdate,
    ) -> BoxFuture<'static, Result<PresenceWritten, HubError>> {
        let (done, answer) = oneshot::channel();
        self.presence_operation(keys, update.events, Operation::Update(update, done), answer)
    }

    /// See [`Hub::presence`](super::Hub::presence).
    pub(super) fn presence(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<Vec<Arc<str>>, HubError>> {
        let (done, answer) = oneshot::channel();
        self.presence_operation(keys, events, Operation::Read(done), answer)
    }

    /// See [`Hub::presence_stats`](super::Hub::presence_stats).
    pub(super) fn presence_stats(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<PresenceStats, HubError>> {
        let (done, answer) = oneshot::channel();
        self.presence_operation(keys, events, Operation::Stats(done), answer)
    }

    /// Queues a presence operation for its task (refused at once when `publish_buffer`
    /// of them already wait), answered on `answer`.
    fn presence_operation<T: Send + 'static>(
        &self,
        keys: &PresenceKeys,
        events: Events,
        operation: Operation,
        answer: oneshot::Receiver<Result<T, HubError>>,
    ) -> BoxFuture<'static, Result<T, HubError>> {
        let queued = self.presence.try_send(PresenceOperation {
            keys: keys.clone(),
            events,
            operation,
        });
        match queued {
            Ok(()) => answer
                .map(|answer| answer.unwrap_or(Err(HubError::NotRunning)))
                .boxed(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                future::ready(Err(HubError::Unavailable(format!(
                    "{} presence operations already wait for Redis",
                    self.config.publish_buffer
                ))))
                .boxed()
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                future::ready(Err(HubError::NotRunning)).boxed()
            }
        }
    }
}

/// The [`Hub`](super::Hub) methods a Redis hub hands to its [`RedisStore`] (`self.store`):
/// history, presence and the readiness ping, the same on one Redis and on a cluster.
macro_rules! delegate_to_store {
    () => {
        fn publish_positioned(
            &self,
            keys: &HistoryKeys,
            payload: Bytes,
            policy: HistoryPolicy,
        ) -> BoxFuture<'static, Result<Position, HubError>> {
            self.store.publish_positioned(keys, payload, policy)
        }

        fn history(
            &self,
            keys: &HistoryKeys,
            query: HistoryQuery,
            ttl: Duration,
        ) -> BoxFuture<'static, Result<HistoryPage, HubError>> {
            self.store.history(keys, query, ttl)
        }

        fn presence_update(
            &self,
            keys: &PresenceKeys,
            update: PresenceUpdate,
        ) -> BoxFuture<'static, Result<PresenceWritten, HubError>> {
            self.store.presence_update(keys, update)
        }

        fn presence(
            &self,
            keys: &PresenceKeys,
            events: Events,
        ) -> BoxFuture<'static, Result<Vec<Arc<str>>, HubError>> {
            self.store.presence(keys, events)
        }

        fn presence_stats(
            &self,
            keys: &PresenceKeys,
            events: Events,
        ) -> BoxFuture<'static, Result<PresenceStats, HubError>> {
            self.store.presence_stats(keys, events)
        }

        fn ping(&self) -> BoxFuture<'static, Result<(), HubError>> {
            self.store.ping()
        }
    };
}
pub(super) use delegate_to_store;
