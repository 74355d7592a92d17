//! The Redis Cluster hub: sharded pub/sub (Redis 7.0+) over `N` partitions.
//!
//! A classic `PUBLISH` on a Redis Cluster goes to every node, so it gets slower as nodes
//! are added (redis/redis#2672); a sharded `SPUBLISH` goes only to the shard of its
//! channel's slot. Every hub name carries its partition's hash tag (see [`partitions`] and
//! [`HubNames::partitioned`](super::HubNames::partitioned)), so a partition's channels
//! share one slot, and one connection per partition subscribes all of them on the master
//! of that slot (see `redis_shard.rs`, which also rebuilds it on failover and
//! resharding). A task asks `CLUSTER SHARDS` every `shards_interval` and tells the
//! partitions, so that a new owner is noticed even when Redis says nothing.
//!
//! Publishes go out per partition, pipelined, in call order: order holds per channel,
//! not across partitions. History and presence run as scripts on the cluster connection
//! (each script's keys and its `SPUBLISH` in one slot), as on one Redis.
//!
//! [`partitions`]: super::partitions

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::Recipient;
use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{self, join_all, BoxFuture, FutureExt};
use tokio::sync::{mpsc, watch};

use super::cluster_shards::{self, ShardMap};
use super::history::{HistoryPage, HistoryPolicy, HistoryQuery, Position};
use super::partitions::Partitions;
use super::presence::{Events, PresenceStats, PresenceUpdate, PresenceWritten};
use super::redis_shard::{shard_task, Command, Shard};
use super::redis_store::{delegate_to_store, RedisStore};
use super::{HistoryKeys, Hub, HubError, HubMessage, PresenceKeys};
use crate::config::RedisConfig;
use crate::redis_link::{self, RedisSetupError, SharedConnection};

/// A [`Hub`] on a Redis Cluster, with sharded pub/sub.
///
/// ```
/// use comet_actors::{Hub, RedisClusterHub, RedisConfig};
/// // Nothing connects until the hub starts (inside the node).
/// let config = RedisConfig::cluster(["redis://127.0.0.1:7000/"]);
/// let hub = RedisClusterHub::new(&config, "comet:").unwrap();
/// assert_eq!(hub.name(), "redis-cluster");
/// assert_eq!(hub.partitions().map(|p| p.len()), Some(16));
/// ```
pub struct RedisClusterHub {
    config: Arc<RedisConfig>,
    partitions: Partitions,
    prefix: String,
    /// One command queue per partition, and its publishes not yet answered (a flush
    /// asks only the partitions that have some: it comes with every action's answer).
    shards: Vec<(mpsc::UnboundedSender<Command>, Arc<AtomicUsize>)>,
    /// Their receiving ends, until started.
    pending: Mutex<Option<Vec<mpsc::UnboundedReceiver<Command>>>>,
    /// The hub bridge, once started: publishes refused at once are handed to it here.
    sink: OnceLock<Recipient<HubMessage>>,
    /// History, presence, the publish buffer and the cluster connection.
    store: RedisStore,
}

impl RedisClusterHub {
    /// A hub on the cluster of `config.cluster`, its names under `prefix` (the node's).
    /// Checks the seed URLs; connects only once started.
    pub fn new(config: &RedisConfig, prefix: &str) -> Result<RedisClusterHub, RedisSetupError> {
        let shared = Arc::new(SharedConnection::new(
            redis_link::Source::new(config, 1)?,
            config,
        ));
        let partitions = Partitions::new(config.partitions);
        let (shards, receivers) = (0..partitions.len())
            .map(|_| {
                let (commands, receiver) = mpsc::unbounded_channel();
                ((commands, Arc::new(AtomicUsize::new(0))), receiver)
            })
            .unzip();
        let config = Arc::new(config.clone());
        Ok(RedisClusterHub {
            store: RedisStore::new(config.clone(), shared),
            config,
            partitions,
            prefix: prefix.to_owned(),
            shards,
            pending: Mutex::new(Some(receivers)),
            sink: OnceLock::new(),
        })
    }

    /// The service channel of partition `p`: `P{t_p}shard`.
    fn service(&self, p: usize) -> String {
        format!("{}{{{}}}shard", self.prefix, self.partitions.tag(p))
    }

    /// The partition of a hub channel, from its hash tag.
    fn partition_of(&self, channel: &str) -> Result<usize, HubError> {
        let tag = channel
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(tag, _)| tag);
        tag.and_then(|tag| self.partitions.by_tag(tag))
            .ok_or_else(|| {
                HubError::Unavailable(format!(
                    "`{channel}` carries no partition's hash tag; on a Redis Cluster every hub \
                     channel is named by HubNames::partitioned"
                ))
            })
    }

    /// Sends a command to the partition of `channel` (a publish counted in its
    /// unanswered publishes first, so that a flush after it waits for it).
    fn send(&self, channel: &str, command: Command) -> Result<(), HubError> {
        let p = self.partition_of(channel)?;
        let (commands, unanswered) = &self.shards[p];
        let publish = matches!(command, Command::Publish { .. });
        if publish {
            unanswered.fetch_add(1, Ordering::AcqRel);
        }
        commands.send(command).map_err(|_| {
            if publish {
                unanswered.fetch_sub(1, Ordering::AcqRel);
            }
            HubError::NotRunning
        })
    }

    fn change(
        &self,
        channel: &str,
        change: impl FnOnce(oneshot::Sender<Result<(), HubError>>) -> Command,
    ) -> BoxFuture<'static, Result<(), HubError>> {
        let (done, answer) = oneshot::channel();
        if let Err(err) = self.send(channel, change(done)) {
            return future::ready(Err(err)).boxed();
        }
        answer
            .map(|answer| answer.unwrap_or(Err(HubError::NotRunning)))
            .boxed()
    }
}

/// Asks `CLUSTER SHARDS` every `shards_interval` and tells the partitions what changed.
async fn shards_watcher(
    shared: Arc<SharedConnection>,
    config: Arc<RedisConfig>,
    owners: watch::Sender<Arc<ShardMap>>,
) {
    let mut tick = tokio::time::interval(config.shards_interval.max(Duration::from_millis(10)));
    loop {
        tick.tick().await;
        if owners.is_closed() {
            break;
        }
        match cluster_shards::lookup(&shared, &config).await {
            Ok(map) => {
                owners.send_if_modified(|known| {
                    let changed = **known != map;
                    if changed {
                        *known = Arc::new(map);
                    }
                    changed
                });
            }
            Err(err) => log::debug!("redis cluster hub: CLUSTER SHARDS: {err}"),
        }
    }
}

impl Hub for RedisClusterHub {
    delegate_to_store!();

    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(receivers) = pending else {
            return future::ready(Err(HubError::Unavailable(
                "the Redis Cluster hub was started twice".into(),
            )))
            .boxed();
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return future::ready(Err(HubError::NotRunning)).boxed();
        };
        let _ = self.sink.set(sink.clone());
        self.store.start(&runtime);
        let (owners, watching) = watch::channel(Arc::new(ShardMap::default()));
        runtime.spawn(shards_watcher(
            self.store.shared.clone(),
            self.config.clone(),
            owners,
        ));
        for (p, commands) in receivers.into_iter().enumerate() {
            let buffered = self.store.buffered.clone();
            let unanswered = self.shards[p].1.clone();
            let shard = Shard {
                partition: p,
                slot: self.partitions.slot(p),
                service: self.service(p),
                config: self.config.clone(),
                shared: self.store.shared.clone(),
                sink: sink.clone(),
                owners: watching.clone(),
                release: Arc::new(move |messages, bytes| {
                    unanswered.fetch_sub(messages, Ordering::AcqRel);
                    buffered.release(messages, bytes);
                }),
            };
            runtime.spawn(shard_task(shard, commands));
        }
        log::info!(
            "redis cluster hub: using {} with {} partitions",
            self.config.describe(),
            self.partitions.len()
        );
        future::ready(Ok(())).boxed()
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        let refused = |channel: &str, payload: Bytes, err: HubError| {
            if let Some(sink) = self.sink.get() {
                sink.do_send(HubMessage {
                    channel: channel.to_owned(),
                    payload,
                });
            }
            future::ready(Err(err)).boxed()
        };
        let bytes = channel.len() + payload.len();
        if let Err(err) = self.store.reserve(bytes) {
            return refused(channel, payload, err);
        }
        let (done, answer) = oneshot::channel();
        let command = Command::Publish {
            channel: channel.to_owned(),
            payload: payload.clone(),
            bytes,
            done,
        };
        match self.send(channel, command) {
            Ok(()) => answer
                .map(|answer| answer.unwrap_or(Err(HubError::NotRunning)))
                .boxed(),
            Err(err) => {
                self.store.buffered.release(1, bytes);
                refused(channel, payload, err)
            }
        }
    }

    fn flush(&self) -> BoxFuture<'static, Result<(), HubError>> {
        if self.store.buffered.is_empty() {
            return future::ready(Ok(())).boxed();
        }
        let answers: Vec<_> = self
            .shards
            .iter()
            .filter(|(_, unanswered)| unanswered.load(Ordering::Acquire) > 0)
            .map(|(shard, _)| {
                let (done, answer) = oneshot::channel();
                let sent = shard.send(Command::Flush(done)).is_ok();
                async move {
                    if !sent {
                        return Err(HubError::NotRunning);
                    }
                    answer.await.unwrap_or(Err(HubError::NotRunning))
                }
            })
            .collect();
        async move { join_all(answers).await.into_iter().collect() }.boxed()
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        let owned = channel.to_owned();
        self.change(channel, |done| Command::Subscribe(owned, done))
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        let owned = channel.to_owned();
        self.change(channel, |done| Command::Unsubscribe(owned, done))
    }

    fn partitions(&self) -> Option<Partitions> {
        Some(self.partitions.clone())
    }

    fn name(&self) -> &'static str {
        "redis-cluster"
    }
}
