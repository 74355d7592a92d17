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
//! - the **subscriber** owns the one dedicated pub/sub connection. It remembers the set
//!   of channels the process wants; after losing Redis it reconnects with backoff and
//!   subscribes all of them again. A `subscribe` resolves once Redis confirmed it, or at
//!   once with an error while Redis is unreachable (the channel stays wanted and is
//!   subscribed on reconnection).
//!
//! Why not publish through several pooled connections at once: two publishes from one
//! caller could then overtake each other. Redis runs commands one at a time anyway, so
//! one pipelined connection is not the limit; a single writer that batches keeps order
//! for free.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Recipient;
use bytes::Bytes;
use deadpool_redis::{Connection as PooledConnection, Pool};
use futures::channel::oneshot;
use futures::future::{self, BoxFuture, FutureExt};
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::{Client, Msg, Value};
use tokio::sync::mpsc;

use super::{Hub, HubError, HubMessage};
use crate::config::RedisConfig;
use crate::redis_link::{self, Backoff, RedisSetupError};

/// Most channels named in one SUBSCRIBE when resubscribing after a reconnection.
const RESUBSCRIBE_CHUNK: usize = 1000;

/// One publish waiting for the publisher.
struct Publish {
    /// Channel and payload; `None` for a [`Hub::flush`] marker, answered with its batch.
    message: Option<(String, Bytes)>,
    /// Bytes counted in [`Buffered::bytes`] for it (0 for a marker).
    bytes: usize,
    done: oneshot::Sender<Result<(), HubError>>,
}

/// What the publishes not yet answered hold, shared by the hub (which counts them in)
/// and the publisher (which counts them out once Redis answered).
#[derive(Default)]
struct Buffered {
    /// Publishes queued and not yet answered, so that a flush with none skips the queue.
    messages: AtomicUsize,
    /// Their bytes (channel names and payloads), bounded by `publish_buffer_bytes`.
    bytes: AtomicUsize,
}

/// A change of the subscription set, for the subscriber.
enum Change {
    Subscribe(String, oneshot::Sender<Result<(), HubError>>),
    Unsubscribe(String, oneshot::Sender<Result<(), HubError>>),
}

impl Change {
    fn is_subscribe(&self) -> bool {
        matches!(self, Change::Subscribe(..))
    }

    fn into_parts(self) -> (String, oneshot::Sender<Result<(), HubError>>) {
        match self {
            Change::Subscribe(channel, done) | Change::Unsubscribe(channel, done) => {
                (channel, done)
            }
        }
    }
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
}

impl RedisHub {
    /// A hub on the Redis at `config.url`. Checks the URL; connects only once started.
    pub fn new(config: &RedisConfig) -> Result<RedisHub, RedisSetupError> {
        let client = redis_link::client(config)?;
        // The publisher holds one connection; a second lets it replace a broken one
        // without waiting for the first to be recycled.
        let pool = redis_link::pool(config, 2)?;
        let (publishes, publishes_rx) = mpsc::channel(config.publish_buffer.max(1));
        let (changes, changes_rx) = mpsc::unbounded_channel();
        Ok(RedisHub {
            config: Arc::new(config.clone()),
            client,
            pool,
            publishes,
            buffered: Arc::new(Buffered::default()),
            changes,
            pending: Mutex::new(Some(Pending {
                publishes: publishes_rx,
                changes: changes_rx,
            })),
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
        runtime.spawn(publisher(
            self.pool.clone(),
            self.config.clone(),
            pending.publishes,
            self.buffered.clone(),
        ));
        runtime.spawn(subscriber(
            self.client.clone(),
            self.config.clone(),
            pending.changes,
            sink,
        ));
        log::info!("redis hub: using {}", self.config.url);
        future::ready(Ok(())).boxed()
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.queue(Some((channel.to_owned(), payload)))
    }

    fn flush(&self) -> BoxFuture<'static, Result<(), HubError>> {
        if self.buffered.messages.load(Ordering::Acquire) == 0 {
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
    /// the buffer is full in messages or in bytes.
    fn queue(&self, message: Option<(String, Bytes)>) -> BoxFuture<'static, Result<(), HubError>> {
        let (done, answer) = oneshot::channel();
        let counted = message.is_some();
        let bytes = message
            .as_ref()
            .map_or(0, |(channel, payload)| channel.len() + payload.len());
        if counted {
            if let Err(held) = self.reserve(bytes) {
                return future::ready(Err(HubError::Unavailable(format!(
                    "{held} bytes of publishes already wait for Redis (publish_buffer_bytes \
                     is {})",
                    self.config.publish_buffer_bytes
                ))))
                .boxed();
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
                    release(&self.buffered, 1, bytes);
                }
                future::ready(Err(match err {
                    mpsc::error::TrySendError::Full(_) => HubError::Unavailable(format!(
                        "{} publishes already wait for Redis",
                        self.config.publish_buffer
                    )),
                    mpsc::error::TrySendError::Closed(_) => HubError::NotRunning,
                }))
                .boxed()
            }
        }
    }

    /// Counts one more publish of `bytes` in, unless the bytes already buffered leave no
    /// room for it (a publish always fits an empty buffer); else answers those bytes.
    fn reserve(&self, bytes: usize) -> Result<(), usize> {
        let limit = self.config.publish_buffer_bytes;
        self.buffered
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held.saturating_add(bytes) <= limit).then(|| held + bytes)
            })?;
        self.buffered.messages.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

/// Counts answered (or refused) publishes out of the buffer.
fn release(buffered: &Buffered, messages: usize, bytes: usize) {
    buffered.messages.fetch_sub(messages, Ordering::AcqRel);
    buffered.bytes.fetch_sub(bytes, Ordering::AcqRel);
}

fn unavailable(err: impl std::fmt::Display) -> HubError {
    HubError::Unavailable(err.to_string())
}

/// The publisher task: sends queued publishes in order, as pipelines, on one connection.
async fn publisher(
    pool: Pool,
    config: Arc<RedisConfig>,
    mut queue: mpsc::Receiver<Publish>,
    buffered: Arc<Buffered>,
) {
    let mut connection: Option<PooledConnection> = None;
    // While Redis is down: when to try again, and the error to answer until then.
    let mut down: Option<(Instant, HubError)> = None;
    let retry = config.reconnect_min.max(Duration::from_millis(1));
    let mut batch = Batch::new(&config);
    while batch.fill(&mut queue).await {
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
        release(&buffered, messages, bytes);
        for publish in batch.publishes.drain(..) {
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

/// Why the subscriber's connection ended.
enum Ended {
    /// The hub was dropped: stop for good.
    HubGone,
    /// Redis went away: reconnect.
    Lost(String),
}

/// The subscriber task: keeps the wanted channels subscribed on one dedicated connection,
/// across reconnections, and hands every message to the hub bridge.
async fn subscriber(
    client: Client,
    config: Arc<RedisConfig>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    sink: Recipient<HubMessage>,
) {
    let mut wanted: HashSet<String> = HashSet::new();
    let mut backoff = Backoff::new(&config);
    let mut lost_since: Option<Instant> = None;
    let mut first = true;
    loop {
        // Changes that arrive while connecting wait in the channel.
        let connected =
            match tokio::time::timeout(config.connect_timeout, client.get_async_pubsub()).await {
                Ok(Ok(pubsub)) => {
                    let (mut commands, messages) = pubsub.split();
                    match resubscribe(&mut commands, &wanted, &config).await {
                        Ok(()) => Ok((commands, messages)),
                        Err(err) => Err(err),
                    }
                }
                Ok(Err(err)) => Err(err.to_string()),
                Err(_) => Err(format!(
                    "no connection within {} ms",
                    config.connect_timeout.as_millis()
                )),
            };
        match connected {
            Ok((mut commands, mut messages)) => {
                if let Some(since) = lost_since.take() {
                    log::info!(
                        "redis hub: subscriber connected again after {:.1} s; {} channel(s) \
                         subscribed again",
                        since.elapsed().as_secs_f64(),
                        wanted.len()
                    );
                }
                first = false;
                backoff.reset();
                match serve(
                    &mut commands,
                    &mut messages,
                    &mut changes,
                    &mut wanted,
                    &sink,
                    &config,
                )
                .await
                {
                    Ended::HubGone => break,
                    Ended::Lost(reason) => {
                        log::error!(
                            "redis hub: lost the subscriber connection ({reason}); \
                             reconnecting with backoff"
                        );
                        lost_since = Some(Instant::now());
                    }
                }
            }
            Err(reason) => {
                if first || lost_since.is_none() {
                    log::error!(
                        "redis hub: cannot connect the subscriber to {} ({reason}); \
                         retrying with backoff",
                        config.url
                    );
                    first = false;
                    lost_since = Some(Instant::now());
                } else {
                    log::debug!("redis hub: subscriber still cannot connect: {reason}");
                }
            }
        }
        // Wait before the next attempt, recording changes meanwhile and answering them
        // at once: the caller learns Redis is away, the channel stays wanted.
        let pause = tokio::time::sleep(backoff.next_wait());
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                change = changes.recv() => {
                    let Some(change) = change else { return };
                    let subscribe = change.is_subscribe();
                    let (channel, done) = change.into_parts();
                    if subscribe {
                        wanted.insert(channel);
                    } else {
                        wanted.remove(&channel);
                    }
                    let _ = done.send(Err(HubError::Unavailable(
                        "Redis is unreachable; the subscription is kept and made when it is back"
                            .into(),
                    )));
                }
            }
        }
    }
    log::debug!("redis hub: subscriber stopped");
}

/// Subscribes every wanted channel on a fresh connection.
async fn resubscribe(
    commands: &mut PubSubSink,
    wanted: &HashSet<String>,
    config: &RedisConfig,
) -> Result<(), String> {
    let all: Vec<&String> = wanted.iter().collect();
    for chunk in all.chunks(RESUBSCRIBE_CHUNK) {
        match tokio::time::timeout(config.command_timeout, commands.subscribe(chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err.to_string()),
            Err(_) => return Err("SUBSCRIBE timed out".into()),
        }
    }
    Ok(())
}

/// Runs one connection: delivers messages, applies changes (consecutive ones of a kind
/// as one command), pings now and then; returns when the connection or the hub ends.
async fn serve(
    commands: &mut PubSubSink,
    messages: &mut PubSubStream,
    changes: &mut mpsc::UnboundedReceiver<Change>,
    wanted: &mut HashSet<String>,
    sink: &Recipient<HubMessage>,
    config: &RedisConfig,
) -> Ended {
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.reset();
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => deliver(&message, sink),
                None => return Ended::Lost("the connection closed".into()),
            },
            count = changes.recv_many(&mut batch, RESUBSCRIBE_CHUNK) => {
                if count == 0 {
                    return Ended::HubGone;
                }
                if let Err(reason) = apply(commands, &mut batch, wanted, config).await {
                    return Ended::Lost(reason);
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(config.command_timeout, commands.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Ended::Lost(format!("PING failed: {err}")),
                    Err(_) => return Ended::Lost("PING timed out".into()),
                }
            }
        }
    }
}

/// Applies a batch of changes in order, one command per run of the same kind, and
/// answers each. The wanted set changes whatever Redis says: a failed command ends the
/// connection, and the next one subscribes the wanted set afresh.
async fn apply(
    commands: &mut PubSubSink,
    batch: &mut Vec<Change>,
    wanted: &mut HashSet<String>,
    config: &RedisConfig,
) -> Result<(), String> {
    let mut failure = None;
    let mut changes = batch.drain(..).peekable();
    while let Some(change) = changes.next() {
        let subscribe = change.is_subscribe();
        let mut run = vec![change.into_parts()];
        while let Some(next) = changes.next_if(|next| next.is_subscribe() == subscribe) {
            run.push(next.into_parts());
        }
        let channels: Vec<&str> = run.iter().map(|(channel, _)| channel.as_str()).collect();
        for channel in &channels {
            if subscribe {
                wanted.insert((*channel).to_owned());
            } else {
                wanted.remove(*channel);
            }
        }
        let result = if failure.is_some() {
            Err(HubError::Unavailable(
                "the subscriber connection failed".into(),
            ))
        } else {
            let sent = if subscribe {
                tokio::time::timeout(config.command_timeout, commands.subscribe(&channels)).await
            } else {
                tokio::time::timeout(config.command_timeout, commands.unsubscribe(&channels)).await
            };
            match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => {
                    failure = Some(err.to_string());
                    Err(unavailable(err))
                }
                Err(_) => {
                    failure = Some("SUBSCRIBE/UNSUBSCRIBE timed out".to_owned());
                    Err(HubError::Unavailable("Redis did not answer in time".into()))
                }
            }
        };
        for (_, done) in run {
            let _ = done.send(result.clone());
        }
    }
    failure.map_or(Ok(()), Err)
}

fn deliver(message: &Msg, sink: &Recipient<HubMessage>) {
    sink.do_send(HubMessage {
        channel: message.get_channel_name().to_owned(),
        payload: Bytes::copy_from_slice(message.get_payload_bytes()),
    });
}
