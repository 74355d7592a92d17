//! The Redis hub's subscriber: the one dedicated pub/sub connection of a process.
//!
//! It remembers the set of channels the process wants; after losing Redis it reconnects
//! with backoff and subscribes all of them again. A `subscribe` resolves once Redis
//! confirmed it, or at once with an error while Redis is unreachable (the channel stays
//! wanted and is subscribed on reconnection).
//!
//! It also tells the publisher whether what is published now comes back to this process
//! ([`Listening`]): not while its connection is lost, nor until every wanted channel is
//! subscribed again. Meanwhile the publisher hands this process's own publishes to the
//! hub bridge itself, so that its own subscribers miss none of them. The switch back is
//! exact: the publisher finishes the pipeline on its way and holds the next ones while
//! the channels are subscribed again, so every publish is either handed over by the
//! publisher (it ran in Redis before the SUBSCRIBE) or comes back from Redis (after it),
//! never both, never neither.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use actix::Recipient;
use bytes::Bytes;
use futures::channel::oneshot;
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::{Client, Msg, Value};
use tokio::sync::mpsc;

use crate::config::RedisConfig;
use crate::hub::{HubError, HubMessage};
use crate::redis_link::Backoff;

/// Most channels named in one SUBSCRIBE when resubscribing after a reconnection.
const RESUBSCRIBE_CHUNK: usize = 1000;

/// A change of the subscription set, for the subscriber.
pub(super) enum Change {
    /// Subscribe to the channel; answered once Redis confirmed it.
    Subscribe(String, oneshot::Sender<Result<(), HubError>>),
    /// Unsubscribe from the channel.
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

/// Why the subscriber's connection ended.
enum Ended {
    /// The hub was dropped: stop for good.
    HubGone,
    /// Redis went away: reconnect.
    Lost(String),
}

/// What the subscriber tells the publisher about the publishes of this process coming
/// back to it through the subscriber connection.
pub(super) enum Listening {
    /// The subscriber connection is lost: what is published from now on does not come
    /// back; the publisher hands it to the bridge itself.
    Lost,
    /// The subscriber is about to subscribe every wanted channel on a fresh connection:
    /// the publisher finishes the pipeline on its way, answers with a sender, and holds
    /// further publishes until it hears on that sender whether the channels are
    /// subscribed (`true`: what it publishes from then on comes back). A dropped sender
    /// counts as `false`.
    Hold(oneshot::Sender<oneshot::Sender<bool>>),
}

/// Asks the publisher to hold its publishes; the sender that releases it, or `None` if
/// the publisher is gone.
async fn hold(listening: &mpsc::UnboundedSender<Listening>) -> Option<oneshot::Sender<bool>> {
    let (held, holding) = oneshot::channel();
    listening.send(Listening::Hold(held)).ok()?;
    holding.await.ok()
}

/// The subscriber task: keeps the wanted channels subscribed on one dedicated connection,
/// across reconnections, hands every message to the hub bridge, and tells the publisher
/// when what it publishes comes back ([`Listening`]).
pub(super) async fn subscriber(
    client: Client,
    config: Arc<RedisConfig>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    sink: Recipient<HubMessage>,
    listening: mpsc::UnboundedSender<Listening>,
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
                    // No publish of this process is on its way while the channels are
                    // subscribed: each one ran in Redis before (the publisher handed it
                    // over) or runs after (it comes back).
                    let release = hold(&listening).await;
                    let subscribed = resubscribe(&mut commands, &wanted, &config).await;
                    if let Some(release) = release {
                        let _ = release.send(subscribed.is_ok());
                    }
                    subscribed.map(|()| (commands, messages))
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
                    crate::metrics::METRICS.hub_reconnects.inc();
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
                        let _ = listening.send(Listening::Lost);
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
                    Err(HubError::unavailable(err))
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
