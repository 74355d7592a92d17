//! Channel history in Redis: one stream and one hash per channel, both under the
//! channel's hash tag (`<prefix>history:{<channel>}`, `<prefix>history-meta:{<channel>}`),
//! written by one script together with the `PUBLISH` of the positioned message, so that a
//! message and its history entry exist both or neither.
//!
//! Publishes with history go through one task per process, in order, as one script call
//! per batch of what piled up (at most `publish_batch`; on a Redis Cluster one call per
//! slot, all sent at once, `SPUBLISH` instead of `PUBLISH`); reads are one script call each.
//! Both run on one multiplexed connection (`SharedConnection`), apart from the plain
//! publisher's pipeline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::join_all;
use redis::{Script, Value};
use tokio::sync::mpsc;

use super::history::{new_epoch, HistoryPage, HistoryPolicy, HistoryQuery, Position, Publication};
use super::partitions;
use super::redis_presence::{for_redis, run};
use super::{HistoryKeys, HubError};
use crate::config::RedisConfig;
use crate::redis_link::SharedConnection;

/// Appends publications to their channels' histories and publishes them with their
/// positions, in the order given. For each: the stream and meta keys, then ARGV: the
/// positioned hub channel, the payload, the history size, its time to live in seconds,
/// and an epoch to use if the channel has none (new, expired, or lost). A channel whose
/// meta is gone starts a new epoch at offset 1 and drops what its stream still held.
/// Answers `{offset, epoch}` per publication.
const PUBLISH: &str = r"
local out = {}
for k = 1, #KEYS / 2 do
  local stream, meta = KEYS[2 * k - 1], KEYS[2 * k]
  local a = (k - 1) * 5
  local channel, payload, size, ttl, fresh = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = fresh
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
  end
  local offset = redis.call('HINCRBY', meta, 'offset', 1)
  redis.call('XADD', stream, 'MAXLEN', size, offset .. '-1', 'p', payload)
  redis.call('EXPIRE', stream, ttl)
  redis.call('EXPIRE', meta, ttl)
  redis.call('PUBLISH', channel, offset .. ' ' .. epoch .. '\n' .. payload)
  out[k] = {offset, epoch}
end
return out
";

/// Reads a channel's history. KEYS: stream, meta. ARGV: since (`''` for the newest),
/// limit, time to live in seconds, an epoch to use if the channel has none. Answers
/// `{offset, epoch, oldest, id1, payload1, id2, payload2, …}` (ids as offsets, oldest
/// first).
const READ: &str = r"
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
  redis.call('EXPIRE', meta, ARGV[3])
end
local offset = tonumber(redis.call('HGET', meta, 'offset'))
local entries
if ARGV[1] == '' then
  local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', ARGV[2])
  entries = {}
  for i = #newest, 1, -1 do entries[#entries + 1] = newest[i] end
else
  entries = redis.call('XRANGE', stream, '(' .. ARGV[1] .. '-1', '+', 'COUNT', ARGV[2])
end
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
local oldest = 0
if first[1] then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
local out = {offset, epoch, oldest}
for _, entry in ipairs(entries) do
  out[#out + 1] = tonumber(string.match(entry[1], '^(%d+)'))
  out[#out + 1] = entry[2][2]
end
return out
";

/// One publish with history waiting for the history publisher.
pub(super) struct HistoryPublish {
    pub(super) keys: HistoryKeys,
    pub(super) payload: Bytes,
    pub(super) policy: HistoryPolicy,
    /// Bytes counted in the hub's publish buffer for it.
    pub(super) bytes: usize,
    pub(super) done: oneshot::Sender<Result<Position, HubError>>,
}

fn ttl_seconds(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

/// The history publisher: takes what piled up, runs it as one script call, answers each
/// publish with its position, and hands the bytes back to the buffer (`release`).
pub(super) async fn history_publisher(
    connection: Arc<SharedConnection>,
    config: Arc<RedisConfig>,
    mut queue: mpsc::Receiver<HistoryPublish>,
    release: impl Fn(usize, usize),
) {
    let script = Script::new(&for_redis(PUBLISH, &config));
    let max = config.publish_batch.max(1);
    let mut batch: Vec<HistoryPublish> = Vec::with_capacity(max);
    while let Some(first) = queue.recv().await {
        let mut bytes = first.bytes;
        batch.push(first);
        while batch.len() < max && bytes < config.batch_bytes {
            let Ok(next) = queue.try_recv() else { break };
            bytes += next.bytes;
            batch.push(next);
        }
        // One script call per slot (all of a batch on one Redis): a cluster runs a
        // script only on keys of one slot.
        let mut groups: Vec<(u16, Vec<HistoryPublish>)> = Vec::new();
        for publish in batch.drain(..) {
            let slot = if config.is_cluster() {
                partitions::slot(publish.keys.stream.as_bytes())
            } else {
                0
            };
            match groups.iter_mut().find(|(known, _)| *known == slot) {
                Some((_, group)) => group.push(publish),
                None => groups.push((slot, vec![publish])),
            }
        }
        let sent = join_all(groups.iter().map(|(_, group)| {
            let mut invocation = script.prepare_invoke();
            for publish in group {
                invocation
                    .key(&publish.keys.stream)
                    .key(&publish.keys.meta)
                    .arg(&publish.keys.channel)
                    .arg(publish.payload.as_ref())
                    .arg(publish.policy.size.max(1))
                    .arg(ttl_seconds(publish.policy.ttl))
                    .arg(new_epoch().as_ref());
            }
            let (connection, config) = (&connection, &config);
            async move { run::<Vec<(u64, String)>>(connection, config, &invocation).await }
        }))
        .await;
        let count = groups.iter().map(|(_, group)| group.len()).sum();
        release(count, bytes);
        for ((_, group), result) in groups.into_iter().zip(sent) {
            answer(group, result);
        }
    }
    log::debug!("redis hub: history publisher stopped");
}

/// Answers a group of publishes with the positions of one script call.
fn answer(group: Vec<HistoryPublish>, result: Result<Vec<(u64, String)>, HubError>) {
    match result {
        Ok(positions) => {
            let mut positions = positions.into_iter();
            for publish in group {
                let answer = match positions.next() {
                    Some((offset, epoch)) => Ok(Position {
                        offset,
                        epoch: Arc::from(epoch),
                    }),
                    // A short answer (it cannot be, but Redis is not ours).
                    None => Err(HubError::Unavailable("short answer from Redis".into())),
                };
                let _ = publish.done.send(answer);
            }
        }
        Err(err) => {
            log::warn!("redis hub: publishes with history failed: {err}");
            for publish in group {
                let _ = publish.done.send(Err(err.clone()));
            }
        }
    }
}

/// Reads a channel's history.
pub(super) async fn read(
    connection: &SharedConnection,
    config: &RedisConfig,
    keys: &HistoryKeys,
    query: HistoryQuery,
    ttl: Duration,
) -> Result<HistoryPage, HubError> {
    let script = Script::new(READ);
    let mut invocation = script.prepare_invoke();
    invocation
        .key(&keys.stream)
        .key(&keys.meta)
        .arg(query.since.map_or(String::new(), |since| since.to_string()))
        .arg(query.limit.max(1))
        .arg(ttl_seconds(ttl))
        .arg(new_epoch().as_ref());
    let values = run::<Vec<Value>>(connection, config, &invocation).await?;
    page(values).ok_or_else(|| HubError::Unavailable("unreadable history from Redis".into()))
}

fn page(values: Vec<Value>) -> Option<HistoryPage> {
    let int = |value: &Value| match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    };
    let bytes = |value: &Value| match value {
        Value::BulkString(data) => Some(Bytes::copy_from_slice(data)),
        Value::SimpleString(text) => Some(Bytes::copy_from_slice(text.as_bytes())),
        _ => None,
    };
    let mut values = values.iter();
    let offset = int(values.next()?)?;
    let epoch = bytes(values.next()?)?;
    let epoch: Arc<str> = Arc::from(std::str::from_utf8(&epoch).ok()?);
    let oldest = int(values.next()?)?;
    let mut publications = Vec::new();
    while let Some(id) = values.next() {
        publications.push(Publication {
            offset: int(id)?,
            payload: bytes(values.next()?)?,
        });
    }
    Some(HistoryPage {
        publications,
        position: Position { offset, epoch },
        oldest,
    })
}
