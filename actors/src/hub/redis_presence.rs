//! Presence in Redis: per channel a hash of entries (`<prefix>presence:{<channel>}`,
//! connection → entry JSON), a hash of users (`…presence-users:{…}`, user → number of
//! entries) and a sorted set of the processes vouching for their entries
//! (`…presence-vouched:{…}`, process → until when, in ms of Redis's clock), all under the
//! channel's hash tag, with the join/leave events published on `…presence-events:{…}`
//! by the same scripts (see [`super::presence`] for the rules).
//!
//! Every script first removes the entries of processes whose time ran out (found with
//! `HSCAN … MATCH <process>.*`, as connection ids start with their process's id) and
//! announces them as leaves. Events go out in messages of at most 100 entries and 64 KiB
//! (as `encode_events` makes them in memory). The keys expire `presence_ttl` after the last write, so
//! nothing is left behind once every process is gone.
//!
//! The operations run one at a time, in the order called, on one task (the keeper's
//! writes and the reads that follow them must not overtake each other), on the hub's
//! shared multiplexed connection.

use std::sync::Arc;

use futures::channel::oneshot;
use redis::{Script, ScriptInvocation, Value};
use tokio::sync::mpsc;

use super::presence::{vouch_for, Events, PresenceStats, PresenceUpdate, PresenceWritten};
use super::{HubError, PresenceKeys};
use crate::config::RedisConfig;
use crate::redis_link::SharedConnection;

/// What every script starts with. KEYS: entries, users, vouched. ARGV[1]: the events
/// channel, ARGV[2]: `''` (no events), `'on'`, or the most clients for events. Reaps the
/// entries of processes whose time ran out into `left`.
macro_rules! prelude {
    () => {
        r#"
local entries, users, vouched = KEYS[1], KEYS[2], KEYS[3]
local channel, mode = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function forget_user(user)
  if user ~= '' and redis.call('HINCRBY', users, user, -1) <= 0 then
    redis.call('HDEL', users, user)
  end
end
local left = {}
for _, process in ipairs(redis.call('ZRANGEBYSCORE', vouched, '-inf', now)) do
  redis.call('ZREM', vouched, process)
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', entries, cursor, 'MATCH', process .. '.*', 'COUNT', 1000)
    cursor = page[1]
    local found = page[2]
    for i = 1, #found, 2 do
      if redis.call('HDEL', entries, found[i]) == 1 then
        local ok, entry = pcall(cjson.decode, found[i + 1])
        if ok and type(entry) == 'table' and type(entry.user) == 'string' then
          forget_user(entry.user)
        end
        left[#left + 1] = found[i + 1]
      end
    end
  until cursor == '0'
end
local function announce(joined, clients)
  if mode == '' or (mode ~= 'on' and clients > tonumber(mode)) then return end
  local all = {}
  for _, entry in ipairs(left) do all[#all + 1] = {false, entry} end
  for _, entry in ipairs(joined) do all[#all + 1] = {true, entry} end
  local l, j, count, bytes = {}, {}, 0, 0
  local function flush()
    redis.call('PUBLISH', channel, '{"leave":[' .. table.concat(l, ',') .. '],"join":[' .. table.concat(j, ',') .. ']}')
    l, j, count, bytes = {}, {}, 0, 0
  end
  for _, item in ipairs(all) do
    if count > 0 and (count == 100 or bytes + #item[2] > 65536) then flush() end
    if item[1] then j[#j + 1] = item[2] else l[#l + 1] = item[2] end
    count, bytes = count + 1, bytes + #item[2]
  end
  if count > 0 then flush() end
end
"#
    };
}

/// An update. ARGV[3]: the process, [4]: for how long it vouches (ms), [5]: the keys'
/// time to live (ms), [6]: `'1'` when the process has no entry left, [7]: the number of
/// leaves; then (connection, user or `''`, JSON) for each leave, then for each join.
/// Answers `{existed, clients}`.
const UPDATE: &str = concat!(
    prelude!(),
    r#"
local process, vouch, keep = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local existed = redis.call('ZSCORE', vouched, process) and 1 or 0
if ARGV[6] == '1' then
  redis.call('ZREM', vouched, process)
else
  redis.call('ZADD', vouched, now + vouch, process)
end
local i, leaves = 8, tonumber(ARGV[7])
for _ = 1, leaves do
  if redis.call('HDEL', entries, ARGV[i]) == 1 then
    forget_user(ARGV[i + 1])
    left[#left + 1] = ARGV[i + 2]
  end
  i = i + 3
end
local joined = {}
while i + 2 <= #ARGV do
  if redis.call('HSET', entries, ARGV[i], ARGV[i + 2]) == 1 then
    if ARGV[i + 1] ~= '' then redis.call('HINCRBY', users, ARGV[i + 1], 1) end
    joined[#joined + 1] = ARGV[i + 2]
  end
  i = i + 3
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, keep) end
local clients = redis.call('HLEN', entries)
announce(joined, clients)
return {existed, clients}
"#
);

/// A read of the entries. Answers their JSON.
const READ: &str = concat!(
    prelude!(),
    r#"
announce({}, redis.call('HLEN', entries))
return redis.call('HVALS', entries)
"#
);

/// A read of the numbers. Answers `{clients, users}`.
const STATS: &str = concat!(
    prelude!(),
    r#"
local clients = redis.call('HLEN', entries)
announce({}, clients)
return {clients, redis.call('HLEN', users)}
"#
);

/// What a presence operation does.
pub(super) enum Operation {
    Update(
        PresenceUpdate,
        oneshot::Sender<Result<PresenceWritten, HubError>>,
    ),
    Read(oneshot::Sender<Result<Vec<Arc<str>>, HubError>>),
    Stats(oneshot::Sender<Result<PresenceStats, HubError>>),
}

/// One presence operation waiting for the presence task.
pub(super) struct PresenceOperation {
    pub(super) keys: PresenceKeys,
    pub(super) events: Events,
    pub(super) operation: Operation,
}

fn mode(events: Events) -> String {
    match events {
        Events::Off => String::new(),
        Events::On => "on".to_owned(),
        Events::UpTo(max) => max.to_string(),
    }
}

/// The presence task: runs the operations one by one, in order.
pub(super) async fn presence_task(
    connection: Arc<SharedConnection>,
    config: Arc<RedisConfig>,
    mut operations: mpsc::Receiver<PresenceOperation>,
) {
    let scripts = (
        Script::new(&for_redis(UPDATE, &config)),
        Script::new(&for_redis(READ, &config)),
        Script::new(&for_redis(STATS, &config)),
    );
    while let Some(PresenceOperation {
        keys,
        events,
        operation,
    }) = operations.recv().await
    {
        let prepare = |script| prepare(script, &keys, events);
        match operation {
            Operation::Update(update, done) => {
                let mut invocation = prepare(&scripts.0);
                invocation
                    .arg(&update.process)
                    .arg(vouch_for(update.ttl).as_millis() as u64)
                    .arg(update.ttl.as_millis() as u64)
                    .arg(if update.gone { "1" } else { "0" })
                    .arg(update.leaves.len());
                for member in update.leaves.iter().chain(&update.joins) {
                    invocation
                        .arg(member.connection.as_ref())
                        .arg(member.user.as_deref().unwrap_or(""))
                        .arg(member.json.as_ref());
                }
                let answer = run::<(u64, u64)>(&connection, &config, &invocation).await;
                let _ = done.send(answer.map(|(existed, clients)| PresenceWritten {
                    existed: existed == 1,
                    clients,
                }));
            }
            Operation::Read(done) => {
                let answer = run::<Vec<Value>>(&connection, &config, &prepare(&scripts.1)).await;
                let _ = done.send(answer.and_then(|values| entries(&values)));
            }
            Operation::Stats(done) => {
                let answer = run::<(u64, u64)>(&connection, &config, &prepare(&scripts.2)).await;
                let _ = done.send(answer.map(|(clients, users)| PresenceStats { clients, users }));
            }
        }
    }
    log::debug!("redis hub: presence task stopped");
}

/// A call of `script` with the channel's keys and the prelude's arguments.
fn prepare<'a>(script: &'a Script, keys: &PresenceKeys, events: Events) -> ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    invocation
        .key(&keys.entries)
        .key(&keys.users)
        .key(&keys.vouched)
        .arg(&keys.events)
        .arg(mode(events));
    invocation
}

fn entries(values: &[Value]) -> Result<Vec<Arc<str>>, HubError> {
    values
        .iter()
        .map(|value| match value {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().map(Arc::from),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| HubError::Unavailable("unreadable presence from Redis".into()))
}

/// A script's text for the Redis of `config`: on a cluster, its publishes are sharded
/// (`SPUBLISH`, to a channel in the slot of the script's keys).
pub(super) fn for_redis(script: &str, config: &RedisConfig) -> String {
    if config.is_cluster() {
        script.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")
    } else {
        script.to_owned()
    }
}

/// Runs one script call on the shared connection within the command timeout (a failure
/// of the connection is reported to it, so that the next call opens another).
pub(super) async fn run<T: redis::FromRedisValue>(
    connection: &SharedConnection,
    config: &RedisConfig,
    invocation: &ScriptInvocation<'_>,
) -> Result<T, HubError> {
    let mut live = connection.get().await.map_err(HubError::Unavailable)?;
    match tokio::time::timeout(
        config.command_timeout,
        invocation.invoke_async::<T>(&mut live),
    )
    .await
    {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(err)) => {
            connection.failed(&err);
            Err(HubError::unavailable(err))
        }
        Err(_) => Err(HubError::Unavailable(format!(
            "no answer from Redis within {} ms",
            config.command_timeout.as_millis()
        ))),
    }
}
