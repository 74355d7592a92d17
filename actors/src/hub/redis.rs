//! The Redis hub: Redis pub/sub between the processes of a cluster.
//!
//! Two tasks do the talking, both started by [`Hub::start`]:
//!
//! - the **publisher** owns one pooled connection. [`Hub::publish`] puts the message on
//!   an in-memory queue before it returns (so publishes take effect in call order,
//!   whoever calls), and the publisher sends everything queued as one pipeline: one
//!   write and one round trip for many messages, in order. The queue is bounded in
//!   messages (`publish_buffer`) and in bytes (`publish_buffer_bytes`), counted until
//!   Redis answered: while Redis stalls, a publish beyond either bound fails at once
//!   (`hub unavailable`) instead of holding memory, and the room comes back as Redis
//!   answers. A connection that broke while idle (Redis restarted) is replaced at once
//!   by a fresh one for the same pipeline, so a publish fails only when Redis is really
//!   unreachable; then publishes fail at once for `reconnect_min` before the next try
//!   (a try costs one connect), so publishing resumes within that much of Redis's
//!   return. A [`Hub::flush`] is a marker in that queue, answered with its batch (at
//!   once when nothing is unconfirmed).
//! - the **subscriber** owns the one dedicated pub/sub connection, and subscribes every
//!   wanted channel again after losing Redis (see `redis_subscriber.rs`).
//!
//! **This process's own subscribers miss none of its messages.** A publish that would
//! not come back through the subscriber connection is handed to the hub bridge (the
//! `sink`) by the hub itself, as if it had come back: one that failed or was refused,
//! and every one sent while the subscriber connection is lost or not yet subscribed
//! again (Redis restarted: the publisher is usually back first). The subscriber tells
//! the publisher when that is (`Listening`), between two pipelines, so each message
//! reaches the bridge once: from the publisher or from Redis, in the order published.
//!
//! Why not publish through several pooled connections at once: two publishes from one
//! caller could then overtake each other. Redis runs commands one at a time anyway, so
//! one pipelined connection is not the limit; a single writer that batches keeps order
//! for free.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::Recipient;
use bytes::Bytes;
use deadpool_redis::{Connection as PooledConnection, Pool};
use futures::channel::oneshot;
use futures::future::{self, BoxFuture, FutureExt};
use redis::Client;
use tokio::sync::mpsc;

use super::history::{HistoryPage, HistoryPolicy, HistoryQuery, Position};
use super::presence::{Events, PresenceStats, PresenceUpdate, PresenceWritten};
use super::redis_store::{delegate_to_store, Buffered, RedisStore};
use super::redis_subscriber::{subscriber, Change, Listening};
use super::{HistoryKeys, Hub, HubError, HubMessage, PresenceKeys};
use crate::config::RedisConfig;
use crate::redis_link::{self, RedisSetupError, SharedConnection};

/// One publish waiting for the publisher.
struct Publish {
    /// Channel and payload; `None` for a [`Hub::flush`] marker, answered with its batch.
    message: Option<(String, Bytes)>,
    /// Bytes counted in [`Buffered::bytes`] for it (0 for a marker).
    bytes: usize,
    done: oneshot::Sender<Result<(), HubError>>,
}

/// The receiving ends, handed to the tasks when the hub starts.
struct Pending {
    publishes: mpsc::Receiver<Publish>,
    changes: mpsc::UnboundedReceiver<Change>,
}

/// A [`Hub`] on Redis pub/sub.
///
/// ```
/// use comet_actors::{Hub, RedisConfig, RedisHub};
/// // Nothing connects until the hub starts (inside the node), so this works anywhere.
/// let hub = RedisHub::new(&RedisConfig::new("redis://127.0.0.1:6379/")).unwrap();
/// assert_eq!(hub.name(), "redis");
/// ```
pub struct RedisHub {
    config: Arc<RedisConfig>,
    client: Client,
    pool: Pool,
    publishes: mpsc::Sender<Publish>,
    buffered: Arc<Buffered>,
    changes: mpsc::UnboundedSender<Change>,
    pending: Mutex<Option<Pending>>,
    /// The hub bridge, once started: publishes refused at once are handed to it here.
    sink: OnceLock<Recipient<HubMessage>>,
    /// History and presence, on their own connection.
    store: RedisStore,
}

impl RedisHub {
    /// A hub on the Redis at `config.url`. Checks the URL; connects only once started.
    pub fn new(config: &RedisConfig) -> Result<RedisHub, RedisSetupError> {
        let client = redis_link::client(config)?;
        // The publisher holds one connection; a second lets it replace a broken one
        // without waiting for the first to be recycled.
        let pool = redis_link::pool(config, 2)?;
        let shared = Arc::new(SharedConnection::new(
            redis_link::Source::new(config, 1)?,
            config,
        ));
        let (publishes, publishes_rx) = mpsc::channel(config.publish_buffer.max(1));
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let config = Arc::new(config.clone());
        let store = RedisStore::new(config.clone(), shared);
        Ok(RedisHub {
            config,
            client,
            pool,
            publishes,
            buffered: store.buffered.clone(),
            changes,
            pending: Mutex::new(Some(Pending {
                publishes: publishes_rx,
                changes: changes_rx,
            })),
            sink: OnceLock::new(),
            store,
        })
    }

    fn change(
        &self,
        change: impl FnOnce(oneshot::Sender<Result<(), HubError>>) -> Change,
    ) -> BoxFuture<'static, Result<(), HubError>> {
        let (done, answer) = oneshot::channel();
        if self.changes.send(change(done)).is_err() {
            return future::ready(Err(HubError::NotRunning)).boxed();
        }
        answer
            .map(|answer| answer.unwrap_or(Err(HubError::NotRunning)))
            .boxed()
    }
}

impl Hub for RedisHub {
    delegate_to_store!();

    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(pending) = pending else {
            return future::ready(Err(HubError::Unavailable(
                "the Redis hub was started twice".into(),
            )))
            .boxed();
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return future::ready(Err(HubError::NotRunning)).boxed();
        };
        let _ = self.sink.set(sink.clone());
        let (listening, heard) = mpsc::unbounded_channel();
        runtime.spawn(publisher(
            self.pool.clone(),
            self.config.clone(),
            pending.publishes,
            self.buffered.clone(),
            Sink {
                bridge: sink.clone(),
                listening: heard,
            },
        ));
        self.store.start(&runtime);
        runtime.spawn(subscriber(
            self.client.clone(),
            self.config.clone(),
            pending.changes,
            sink,
            listening,
        ));
        log::info!("redis hub: using {}", self.config.url);
        future::ready(Ok(())).boxed()
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.queue(Some((channel.to_owned(), payload)))
    }

    fn flush(&self) -> BoxFuture<'static, Result<(), HubError>> {
        if self.buffered.is_empty() {
            return future::ready(Ok(())).boxed();
        }
        self.queue(None)
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        let channel = channel.to_owned();
        self.change(|done| Change::Subscribe(channel, done))
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        let channel = channel.to_owned();
        self.change(|done| Change::Unsubscribe(channel, done))
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

impl RedisHub {
    /// Queues a publish (or a flush marker) for the publisher, or refuses it at once when
    /// the buffer is full in messages or in bytes (handing a refused message to this
    /// process's own subscribers).
    fn queue(&self, message: Option<(String, Bytes)>) -> BoxFuture<'static, Result<(), HubError>> {
        let refused = |message: Option<(String, Bytes)>, err: HubError| {
            if let (Some((channel, payload)), Some(sink)) = (message, self.sink.get()) {
                sink.do_send(HubMessage { channel, payload });
            }
            future::ready(Err(err)).boxed()
        };
        let (done, answer) = oneshot::channel();
        let counted = message.is_some();
        let bytes = message
            .as_ref()
            .map_or(0, |(channel, payload)| channel.len() + payload.len());
        if counted {
            if let Err(err) = self.store.reserve(bytes) {
                return refused(message, err);
            }
        }
        match self.publishes.try_send(Publish {
            message,
            bytes,
            done,
        }) {
            Ok(()) => answer
                .map(|answer| answer.unwrap_or(Err(HubError::NotRunning)))
                .boxed(),
            Err(err) => {
                if counted {
                    self.buffered.release(1, bytes);
                }
                let why = match &err {
                    mpsc::error::TrySendError::Full(_) => HubError::Unavailable(format!(
                        "{} publishes already wait for Redis",
                        self.config.publish_buffer
                    )),
                    mpsc::error::TrySendError::Closed(_) => HubError::NotRunning,
                };
                refused(err.into_inner().message, why)
            }
        }
    }
}

fn unavailable(err: impl std::fmt::Display) -> HubError {
    HubError::unavailable(err)
}

/// Where the publisher hands the messages that do not come back through the subscriber
/// connection, and how it learns when that is.
struct Sink {
    bridge: Recipient<HubMessage>,
    listening: mpsc::UnboundedReceiver<Listening>,
}

/// The publisher task: sends queued publishes in order, as pipelines, on one connection.
async fn publisher(
    pool: Pool,
    config: Arc<RedisConfig>,
    mut queue: mpsc::Receiver<Publish>,
    buffered: Arc<Buffered>,
    mut sink: Sink,
) {
    let mut connection: Option<PooledConnection> = None;
    // While Redis is down: when to try again, and the error to answer until then.
    let mut down: Option<(Instant, HubError)> = None;
    let retry = config.reconnect_min.max(Duration::from_millis(1));
    let mut batch = Batch::new(&config);
    // Whether what Redis runs now comes back through the subscriber connection; not
    // before it first subscribed.
    let mut listening = false;
    loop {
        // Between two pipelines: hear the subscriber first.
        tokio::select! {
            biased;
            Some(heard) = sink.listening.recv() => {
                match heard {
                    Listening::Lost => listening = false,
                    Listening::Hold(held) => {
                        let (release, released) = oneshot::channel();
                        if held.send(release).is_ok() {
                            listening = released.await.unwrap_or(false);
                        }
                    }
                }
                continue;
            }
            more = batch.fill(&mut queue) => if !more { break },
        }
        let attempt = down
            .as_ref()
            .is_none_or(|(retry_at, _)| Instant::now() >= *retry_at);
        let (messages, bytes) = batch.counts();
        let result = match &down {
            // Only flush markers: everything before them is answered already.
            _ if messages == 0 => Ok(()),
            Some((_, err)) if !attempt => Err(err.clone()),
            _ => send_batch(&pool, &mut connection, &batch.publishes).await,
        };
        if attempt && messages > 0 {
            match &result {
                Ok(()) => {
                    if down.take().is_some() {
                        log::info!("redis hub: publishing again");
                    }
                }
                Err(err) => {
                    if down.is_none() {
                        log::error!(
                            "redis hub: cannot publish ({err}); publishes fail until Redis \
                             is back, trying again every {} ms",
                            retry.as_millis()
                        );
                    }
                    down = Some((Instant::now() + retry, err.clone()));
                }
            }
        }
        buffered.release(messages, bytes);
        // What will not come back from Redis goes to this process's subscribers now, in
        // order and before its publisher hears the outcome.
        let hand_over = !listening || result.is_err();
        for publish in batch.publishes.drain(..) {
            if let (true, Some((channel, payload))) = (hand_over, publish.message) {
                sink.bridge.do_send(HubMessage { channel, payload });
            }
            let _ = publish.done.send(result.clone());
        }
    }
    log::debug!("redis hub: publisher stopped");
}

/// The publishes sent as one pipeline: at most `publish_batch` of them and, unless one
/// alone is larger, at most `batch_bytes`.
struct Batch {
    publishes: Vec<Publish>,
    /// Taken off the queue but over the byte bound of the last batch: the next one's first.
    carry: Option<Publish>,
    max: usize,
    max_bytes: usize,
}

impl Batch {
    fn new(config: &RedisConfig) -> Batch {
        let max = config.publish_batch.max(1);
        Batch {
            publishes: Vec::with_capacity(max),
            carry: None,
            max,
            max_bytes: config.batch_bytes.max(1),
        }
    }

    /// Waits for the next publishes and takes what piled up; false once the hub is gone.
    async fn fill(&mut self, queue: &mut mpsc::Receiver<Publish>) -> bool {
        let first = match self.carry.take() {
            Some(first) => first,
            None => match queue.recv().await {
                Some(first) => first,
                None => return false,
            },
        };
        let mut bytes = first.bytes;
        self.publishes.push(first);
        while self.publishes.len() < self.max {
            let Ok(next) = queue.try_recv() else { break };
            if bytes + next.bytes > self.max_bytes {
                self.carry = Some(next);
                break;
            }
            bytes += next.bytes;
            self.publishes.push(next);
        }
        true
    }

    /// How many messages (not flush markers) the batch holds, and their bytes.
    fn counts(&self) -> (usize, usize) {
        self.publishes
            .iter()
            .filter(|p| p.message.is_some())
            .fold((0, 0), |(n, bytes), p| (n + 1, bytes + p.bytes))
    }
}

/// Sends one batch as a pipeline. A connection held from before that turns out broken
/// (Redis restarted or the network dropped it while idle) is dropped from the pool and
/// the pipeline sent again at once on a fresh one: nothing was executed on a dead
/// connection. A pipeline that timed out is not sent again (Redis may have run it).
async fn send_batch(
    pool: &Pool,
    connection: &mut Option<PooledConnection>,
    batch: &[Publish],
) -> Result<(), HubError> {
    let mut pipe = redis::pipe();
    for (channel, payload) in batch.iter().filter_map(|p| p.message.as_ref()) {
        pipe.cmd("PUBLISH")
            .arg(channel)
            .arg(payload.as_ref())
            .ignore();
    }
    if let Some(live) = connection.as_mut() {
        match pipe.query_async::<()>(&mut **live).await {
            Ok(()) => return Ok(()),
            Err(err) => {
                drop_connection(connection);
                if err.is_timeout() || !(err.is_connection_dropped() || err.is_io_error()) {
                    return Err(unavailable(err));
                }
                log::debug!(
                    "redis hub: the publisher's connection broke ({err}); using a fresh one"
                );
            }
        }
    }
    let live = connection.insert(pool.get().await.map_err(unavailable)?);
    match pipe.query_async::<()>(&mut **live).await {
        Ok(()) => Ok(()),
        Err(err) => {
            drop_connection(connection);
            Err(unavailable(err))
        }
    }
}

/// Takes a failed connection out of the pool for good: it may be broken, and a fresh
/// one is cheap to open.
fn drop_connection(connection: &mut Option<PooledConnection>) {
    if let Some(broken) = connection.take() {
        drop(PooledConnection::take(broken));
    }
}
