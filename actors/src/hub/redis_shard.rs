//! One partition of the Redis Cluster hub: one RESP3 connection to the master that owns
//! the partition's slot, on which the partition's channels are subscribed (`SSUBSCRIBE`,
//! one channel per command, pipelined) and its messages published (`SPUBLISH`, pipelined).
//!
//! The first channel subscribed is the partition's service channel, `P{t_p}shard`. The
//! connection is rebuilt (the owner looked up again with `CLUSTER SHARDS`, every wanted
//! channel subscribed again) when:
//!
//! - its socket fails, or a command on it fails (a `MOVED` after the slot left);
//! - Redis pushes an unrequested `sunsubscribe` for the service channel, as it does for
//!   every channel of a slot that migrates or whose master is demoted;
//! - the periodic `CLUSTER SHARDS` (see [`ShardMap`]) names another owner for the slot;
//! - a liveness probe fails: after `probe_interval` with nothing heard on the service
//!   channel, the partition `SPUBLISH`es a probe there; nothing heard within as long
//!   again means the subscriptions are gone without a word (centrifuge#594).
//!
//! Publishing and subscribing on one connection keeps this process's own messages
//! exact, as on one Redis: a message published after its channel's `SSUBSCRIBE` was
//! confirmed comes back on the same connection; one whose publish fails (or that is
//! published while the partition is rebuilding) is handed to the hub bridge directly.
//! Messages published during a move reach no other process (at most once, as ever);
//! history's recovery fills such a gap.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::cluster_shards::{self, ShardMap};
use super::{HubError, HubMessage};
use crate::config::RedisConfig;
use crate::redis_link::{Backoff, SharedConnection};

/// Most commands sent at once while subscribing again (each is one channel).
const RESUBSCRIBE_CHUNK: usize = 1000;

/// What a partition is asked to do, in call order.
pub(super) enum Command {
    /// Publish; `bytes` are counted in the hub's buffer until answered.
    Publish {
        channel: String,
        payload: Bytes,
        bytes: usize,
        done: oneshot::Sender<Result<(), HubError>>,
    },
    /// Answer once everything before has been published (or failed).
    Flush(oneshot::Sender<Result<(), HubError>>),
    /// Subscribe to the channel; answered once Redis confirmed it.
    Subscribe(String, oneshot::Sender<Result<(), HubError>>),
    /// Unsubscribe from the channel.
    Unsubscribe(String, oneshot::Sender<Result<(), HubError>>),
}

impl Command {
    /// The command and channel of a subscription change.
    fn subscription(&self) -> Option<(&'static str, &str)> {
        match self {
            Command::Subscribe(channel, _) => Some(("SSUBSCRIBE", channel)),
            Command::Unsubscribe(channel, _) => Some(("SUNSUBSCRIBE", channel)),
            _ => None,
        }
    }
}

/// What a partition's task needs.
pub(super) struct Shard {
    /// The partition's index, for logs.
    pub(super) partition: usize,
    /// The slot of its hash tag.
    pub(super) slot: u16,
    /// Its service channel, `P{t_p}shard`.
    pub(super) service: String,
    pub(super) config: Arc<RedisConfig>,
    /// The cluster connection, to ask who owns the slot.
    pub(super) shared: Arc<SharedConnection>,
    /// The hub bridge.
    pub(super) sink: Recipient<HubMessage>,
    /// The latest shard map of the periodic `CLUSTER SHARDS`.
    pub(super) owners: watch::Receiver<Arc<ShardMap>>,
    /// Counts answered publishes out of the hub's buffer: (messages, bytes).
    pub(super) release: Arc<dyn Fn(usize, usize) + Send + Sync>,
}

/// Why a partition's connection ended.
enum Ended {
    /// The hub is gone.
    HubGone,
    /// Rebuild it, for this reason.
    Rebuild(String),
}

/// A live connection of a partition.
struct Session {
    connection: MultiplexedConnection,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
    owner: String,
}

/// The task of one partition: keeps its channels subscribed on the slot owner's
/// connection across failovers and migrations, and publishes in order.
pub(super) async fn shard_task(mut shard: Shard, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut wanted: HashSet<String> = HashSet::new();
    let mut backoff = Backoff::new(&shard.config);
    let mut lost_since: Option<Instant> = None;
    // A command that came while waiting to try again, and made the try happen now.
    let mut held: Vec<Command> = Vec::new();
    loop {
        let tried = Instant::now();
        match open(&shard, &wanted).await {
            Ok(mut session) => {
                if let Some(since) = lost_since.take() {
                    crate::metrics::METRICS.hub_reconnects.inc();
                    log::info!(
                        "redis cluster hub: partition {} on {} again after {:.1} s; {} \
                         channel(s) subscribed again",
                        shard.partition,
                        session.owner,
                        since.elapsed().as_secs_f64(),
                        wanted.len()
                    );
                }
                let ended = match run(&shard, &mut session, &mut held, &mut wanted).await {
                    Err(reason) => Ended::Rebuild(reason),
                    Ok(()) => serve(&mut shard, &mut session, &mut commands, &mut wanted).await,
                };
                match ended {
                    Ended::HubGone => break,
                    Ended::Rebuild(reason) => {
                        log::warn!(
                            "redis cluster hub: partition {} (slot {}) leaves {}: {reason}; \
                             looking up its owner again",
                            shard.partition,
                            shard.slot,
                            session.owner
                        );
                        lost_since = Some(Instant::now());
                        // A move is over in moments: the first attempt after a connection
                        // that served a while goes at once; one that ended at once (a
                        // cluster still settling) backs off, so that nothing spins.
                        if tried.elapsed() >= shard.config.probe_interval {
                            backoff.reset();
                            continue;
                        }
                    }
                }
            }
            Err(reason) => {
                if lost_since.is_none() {
                    lost_since = Some(Instant::now());
                    log::error!(
                        "redis cluster hub: partition {} (slot {}) cannot connect ({reason}); \
                         retrying with backoff",
                        shard.partition,
                        shard.slot
                    );
                } else {
                    log::debug!(
                        "redis cluster hub: partition {} still cannot connect: {reason}",
                        shard.partition
                    );
                }
                let unreachable = unreachable(&shard);
                for command in held.drain(..) {
                    refuse(&shard, command, &mut wanted, &unreachable);
                }
            }
        }
        match wait(
            &shard,
            &mut commands,
            &mut wanted,
            backoff.next_wait(),
            tried,
        )
        .await
        {
            Wake::Gone => break,
            Wake::Time => {}
            Wake::Command(command) => held.push(command),
        }
    }
    log::debug!("redis cluster hub: partition {} stopped", shard.partition);
}

/// Looks up the slot's owner, connects to it, subscribes the service channel and every
/// wanted channel.
async fn open(shard: &Shard, wanted: &HashSet<String>) -> Result<Session, String> {
    let map = cluster_shards::lookup(&shard.shared, &shard.config).await?;
    let owner = map
        .owner(shard.slot)
        .ok_or_else(|| format!("no master serves slot {} now", shard.slot))?
        .to_owned();
    let (pushes_tx, pushes) = mpsc::unbounded_channel();
    let connection = tokio::time::timeout(
        shard.config.connect_timeout + shard.config.command_timeout,
        cluster_shards::connect(&shard.config, &owner, pushes_tx),
    )
    .await
    .map_err(|_| format!("no connection to {owner} in time"))??;
    let channels: Vec<&str> = std::iter::once(shard.service.as_str())
        .chain(wanted.iter().map(String::as_str))
        .collect();
    for chunk in channels.chunks(RESUBSCRIBE_CHUNK) {
        let all = join_all(
            chunk
                .iter()
                .map(|channel| subscribe_like(&connection, &shard.config, "SSUBSCRIBE", channel)),
        );
        if let Some(Err(err)) = all.await.into_iter().find(Result::is_err) {
            return Err(format!("SSUBSCRIBE on {owner}: {err}"));
        }
    }
    Ok(Session {
        connection,
        pushes,
        owner,
    })
}

/// One `SSUBSCRIBE`/`SUNSUBSCRIBE` of one channel (several channels in one command may
/// span slots, `CROSSSLOT`, and pair confirmations with the wrong request,
/// redis-rs#2423), within the command timeout.
async fn subscribe_like(
    connection: &MultiplexedConnection,
    config: &RedisConfig,
    command: &str,
    channel: &str,
) -> Result<(), HubError> {
    let mut connection = connection.clone();
    let sent = tokio::time::timeout(
        config.command_timeout,
        redis::cmd(command)
            .arg(channel)
            .query_async::<Value>(&mut connection),
    )
    .await;
    match sent {
        Ok(Ok(Value::ServerError(err))) => Err(HubError::unavailable(format!("{err:?}"))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(HubError::unavailable(err)),
        Err(_) => Err(HubError::Unavailable(format!(
            "{command} got no answer within {} ms",
            config.command_timeout.as_millis()
        ))),
    }
}

/// Runs one connection until it must be rebuilt or the hub is gone.
async fn serve(
    shard: &mut Shard,
    session: &mut Session,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    wanted: &mut HashSet<String>,
) -> Ended {
    let probe_interval = shard.config.probe_interval.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(probe_interval);
    tick.reset();
    let mut heard = Instant::now();
    // When the probe on its way was sent.
    let mut probing: Option<Instant> = None;
    let mut batch = Vec::new();
    let mut watching = true;
    loop {
        tokio::select! {
            push = session.pushes.recv() => {
                let Some(push) = push else {
                    return Ended::Rebuild("the connection closed".into());
                };
                match push.kind {
                    PushKind::SMessage => {
                        if let [channel, payload] = push.data.as_slice() {
                            let channel = bytes_of(channel);
                            if channel == shard.service.as_bytes() {
                                heard = Instant::now();
                                probing = None;
                            } else if let (Ok(channel), Some(payload)) =
                                (std::str::from_utf8(channel), payload_of(payload))
                            {
                                shard.sink.do_send(HubMessage {
                                    channel: channel.to_owned(),
                                    payload,
                                });
                            }
                        }
                    }
                    PushKind::SUnsubscribe => {
                        let service = push
                            .data
                            .first()
                            .is_some_and(|channel| bytes_of(channel) == shard.service.as_bytes());
                        if service {
                            return Ended::Rebuild(
                                "Redis unsubscribed the service channel (the slot moved or \
                                 its master was demoted)"
                                    .into(),
                            );
                        }
                    }
                    PushKind::Disconnection => {
                        return Ended::Rebuild("the connection was lost".into());
                    }
                    _ => {}
                }
            }
            count = commands.recv_many(&mut batch, RESUBSCRIBE_CHUNK) => {
                if count == 0 {
                    return Ended::HubGone;
                }
                if let Err(reason) = run(shard, session, &mut batch, wanted).await {
                    return Ended::Rebuild(reason);
                }
            }
            _ = tick.tick() => {
                if let Some(sent) = probing {
                    if sent.elapsed() >= probe_interval {
                        return Ended::Rebuild(format!(
                            "the probe on {} did not come back within {} ms",
                            shard.service,
                            probe_interval.as_millis()
                        ));
                    }
                } else if heard.elapsed() >= probe_interval {
                    probing = Some(Instant::now());
                    let mut pipe = redis::pipe();
                    pipe.cmd("SPUBLISH").arg(&shard.service).arg("probe").ignore();
                    if let Err(reason) = send(&mut session.connection, &shard.config, &pipe).await {
                        return Ended::Rebuild(format!("the probe failed: {reason}"));
                    }
                }
            }
            changed = shard.owners.changed(), if watching => {
                if changed.is_err() {
                    // The periodic look stopped (the hub is going): nothing more to hear.
                    watching = false;
                    continue;
                }
                let map = shard.owners.borrow_and_update().clone();
                if let Some(owner) = map.owner(shard.slot) {
                    if owner != session.owner {
                        return Ended::Rebuild(format!("CLUSTER SHARDS names {owner} now"));
                    }
                }
            }
        }
    }
}

/// Runs a batch of commands in order: runs of publishes as one pipeline, each
/// subscription change as its own command (pipelined with the rest of its run).
async fn run(
    shard: &Shard,
    session: &mut Session,
    batch: &mut Vec<Command>,
    wanted: &mut HashSet<String>,
) -> Result<(), String> {
    let mut failure: Option<String> = None;
    let mut commands = batch.drain(..).peekable();
    while let Some(command) = commands.next() {
        match command {
            Command::Publish { .. } | Command::Flush(_) => {
                let mut run = vec![command];
                while let Some(next) = commands
                    .next_if(|next| matches!(next, Command::Publish { .. } | Command::Flush(_)))
                {
                    run.push(next);
                }
                let result = match &failure {
                    Some(reason) => Err(HubError::Unavailable(reason.clone())),
                    None => publish(session, &shard.config, &run).await,
                };
                if let Err(HubError::Unavailable(reason)) = &result {
                    failure.get_or_insert_with(|| reason.clone());
                }
                answer_publishes(shard, run, &result);
            }
            Command::Subscribe(..) | Command::Unsubscribe(..) => {
                let mut run = vec![command];
                while let Some(next) = commands.next_if(|next| {
                    matches!(next, Command::Subscribe(..) | Command::Unsubscribe(..))
                }) {
                    run.push(next);
                }
                let sent = join_all(run.iter().map(|change| {
                    let failed = failure.clone();
                    let connection = &session.connection;
                    let config = &shard.config;
                    async move {
                        match (failed, change.subscription()) {
                            (Some(reason), _) => Err(HubError::Unavailable(reason)),
                            (None, Some((command, channel))) => {
                                subscribe_like(connection, config, command, channel).await
                            }
                            (None, None) => Ok(()),
                        }
                    }
                }))
                .await;
                for (change, result) in run.into_iter().zip(sent) {
                    if let Err(err) = &result {
                        failure.get_or_insert_with(|| err.to_string());
                    }
                    match change {
                        Command::Subscribe(channel, done) => {
                            wanted.insert(channel);
                            let _ = done.send(result);
                        }
                        Command::Unsubscribe(channel, done) => {
                            wanted.remove(&channel);
                            let _ = done.send(result);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Publishes a run (flush markers skipped) as one pipeline of `SPUBLISH`.
async fn publish(
    session: &mut Session,
    config: &RedisConfig,
    run: &[Command],
) -> Result<(), HubError> {
    let mut pipe = redis::pipe();
    let mut any = false;
    for command in run {
        if let Command::Publish {
            channel, payload, ..
        } = command
        {
            pipe.cmd("SPUBLISH")
                .arg(channel)
                .arg(payload.as_ref())
                .ignore();
            any = true;
        }
    }
    if !any {
        return Ok(());
    }
    send(&mut session.connection, config, &pipe)
        .await
        .map_err(HubError::Unavailable)
}

/// Sends a pipeline within the command timeout.
async fn send(
    connection: &mut MultiplexedConnection,
    config: &RedisConfig,
    pipe: &redis::Pipeline,
) -> Result<(), String> {
    match tokio::time::timeout(config.command_timeout, pipe.query_async::<()>(connection)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!(
            "no answer within {} ms",
            config.command_timeout.as_millis()
        )),
    }
}

/// Answers a run of publishes; those that failed go to this process's own subscribers
/// directly, as they will not come back.
fn answer_publishes(shard: &Shard, run: Vec<Command>, result: &Result<(), HubError>) {
    let (mut messages, mut bytes) = (0, 0);
    for command in run {
        match command {
            Command::Publish {
                channel,
                payload,
                bytes: size,
                done,
            } => {
                messages += 1;
                bytes += size;
                if result.is_err() {
                    shard.sink.do_send(HubMessage { channel, payload });
                }
                let _ = done.send(result.clone());
            }
            Command::Flush(done) => {
                let _ = done.send(Ok(()));
            }
            _ => {}
        }
    }
    (shard.release)(messages, bytes);
}

/// How a wait before the next attempt ended.
enum Wake {
    /// The hub is gone.
    Gone,
    /// The pause is over.
    Time,
    /// A command came at least `reconnect_min` after the last attempt: try again now,
    /// for it (so that publishing resumes within that much of the master's return).
    Command(Command),
}

/// Waits `pause` before the next attempt, answering what comes meanwhile at once
/// (publishes fail and go to this process's own subscribers, subscription changes are
/// recorded, made when connected again), unless it comes `reconnect_min` after the
/// attempt made at `tried`: then that command is tried at once.
async fn wait(
    shard: &Shard,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    wanted: &mut HashSet<String>,
    pause: Duration,
    tried: Instant,
) -> Wake {
    let pause = tokio::time::sleep(pause);
    tokio::pin!(pause);
    let unreachable = unreachable(shard);
    loop {
        tokio::select! {
            () = &mut pause => return Wake::Time,
            command = commands.recv() => {
                let Some(command) = command else { return Wake::Gone };
                if tried.elapsed() >= shard.config.reconnect_min {
                    return Wake::Command(command);
                }
                refuse(shard, command, wanted, &unreachable);
            }
        }
    }
}

/// The error of a partition whose master cannot be reached.
fn unreachable(shard: &Shard) -> HubError {
    HubError::Unavailable(format!(
        "the Redis Cluster master of partition {} cannot be reached now",
        shard.partition
    ))
}

/// Answers a command while the partition has no connection: a publish fails (and goes to
/// this process's own subscribers), a subscription change is recorded for the next
/// connection.
fn refuse(shard: &Shard, command: Command, wanted: &mut HashSet<String>, why: &HubError) {
    match command {
        Command::Subscribe(channel, done) => {
            wanted.insert(channel);
            let _ = done.send(Err(why.clone()));
        }
        Command::Unsubscribe(channel, done) => {
            wanted.remove(&channel);
            let _ = done.send(Ok(()));
        }
        publish => answer_publishes(shard, vec![publish], &Err(why.clone())),
    }
}

fn bytes_of(value: &Value) -> &[u8] {
    match value {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(text) => text.as_bytes(),
        _ => &[],
    }
}

fn payload_of(value: &Value) -> Option<Bytes> {
    match value {
        Value::BulkString(bytes) => Some(Bytes::copy_from_slice(bytes)),
        Value::SimpleString(text) => Some(Bytes::copy_from_slice(text.as_bytes())),
        _ => None,
    }
}
