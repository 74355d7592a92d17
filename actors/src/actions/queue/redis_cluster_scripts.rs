//! The Lua scripts of the Redis queue on a Redis Cluster (see `redis_layout.rs`).
//!
//! A script on a cluster may only touch keys of one slot, and must name them all in
//! `KEYS`: so each script here works on one route (`{r:<route>}`: its queue, the
//! processing lists and the served set) or on the consumers (`{consumers}`), builds no key
//! name, and publishes nothing (the caller's process channel is in another slot): the
//! queue publishes notices and answers through the node's hub after the script answered.
//! Every check of time uses Redis's clock (`TIME`) as on one Redis. Each starts with the
//! `#!lua` shebang, so that Redis refuses it if it touches a key of another slot, even one
//! that happens to be on the same node.

/// A route's part of a batch: acknowledge, push and take, in the order given, on one
/// route. KEYS: queue, this process's processing list of the route, served. ARGV:
/// operations:
///
/// | operation | arguments | result |
/// | --- | --- | --- |
/// | `a` acknowledge | entry | 1, or 0 if the call was no longer held |
/// | `p` push | entry, ms left before the caller gives up | 2 if pushed into an empty queue (a notice is due), 1 if pushed, 0 if no live process serves the route |
/// | `t` take | max | `{more (0/1), {entries...}}` |
///
/// The queue's expiry and the order of takes are those of `redis_scripts::EXCHANGE`.
pub(super) const EXCHANGE: &str = r"#!lua
local queue, processing, served = KEYS[1], KEYS[2], KEYS[3]
local results = {}
local ok
local i = 1
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'a' then
    results[#results + 1] = redis.call('LREM', processing, -1, ARGV[i + 1])
    i = i + 2
  elseif op == 'p' then
    if ok == nil then
      local t = redis.call('TIME')
      local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      ok = redis.call('ZCOUNT', served, now, '+inf') > 0
    end
    if ok then
      local pushed = 1
      if redis.call('RPUSH', queue, ARGV[i + 1]) == 1 then
        pushed = 2
      end
      local ttl = tonumber(ARGV[i + 2])
      if redis.call('PTTL', queue) < ttl then
        redis.call('PEXPIRE', queue, ttl)
      end
      results[#results + 1] = pushed
    else
      results[#results + 1] = 0
    end
    i = i + 3
  elseif op == 't' then
    local taken, more = {}, 0
    local entries = redis.call('LPOP', queue, tonumber(ARGV[i + 1]))
    if entries then
      redis.call('LPUSH', processing, unpack(entries))
      taken = entries
    end
    if redis.call('LLEN', queue) > 0 then
      more = 1
    end
    results[#results + 1] = {more, taken}
    i = i + 2
  else
    return redis.error_reply('unknown queue operation ' .. tostring(op))
  end
end
return results
";

/// Puts one taken call back at the head of its route's queue, only if this process still
/// holds it. KEYS: processing, queue. ARGV: entry, ms left. Returns 1 if put back, else 0
/// (the caller then publishes the notice).
pub(super) const REQUEUE: &str = r"#!lua
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  local ttl = tonumber(ARGV[2])
  if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  return 1
end
return 0
";

/// Moves a processing list of one route back to the head of the route's queue (oldest
/// ends first, as taken), an unreadable entry to the route's dead list (bounded as on one
/// Redis), and with a served set given also withdraws the consumer from it (a process
/// leaving). A list already moved is empty: moving it again does nothing. KEYS:
/// processing, queue, dead[, served]. ARGV: dead_max, dead_ttl in ms[, consumer].
/// Returns `{moved, set aside}`.
pub(super) const PUT_BACK: &str = r"#!lua
local processing, queue, dead = KEYS[1], KEYS[2], KEYS[3]
local dead_max, dead_ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local moved, set_aside = 0, 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
while true do
  local entry = redis.call('LPOP', processing)
  if not entry then
    break
  end
  local ok, call = pcall(cjson.decode, entry)
  if ok and type(call) == 'table' and type(call.route) == 'string' then
    redis.call('LPUSH', queue, entry)
    if type(call.deadline_ms) == 'number' then
      local left = math.floor(call.deadline_ms - now)
      if left > 0 and redis.call('PTTL', queue) < left then
        redis.call('PEXPIRE', queue, left)
      end
    end
  else
    redis.call('RPUSH', dead, entry)
    redis.call('LTRIM', dead, -dead_max, -1)
    redis.call('PEXPIRE', dead, dead_ttl)
    set_aside = set_aside + 1
  end
  moved = moved + 1
end
if KEYS[4] then
  redis.call('ZREM', KEYS[4], ARGV[3])
end
return {moved, set_aside}
";

/// Sets one unreadable entry aside: out of the processing list, into the route's dead
/// list, bounded. KEYS: processing, dead. ARGV: entry, dead_max, dead_ttl in ms.
pub(super) const SET_ASIDE: &str = r"#!lua
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
";

/// Renews a process's heartbeat, its membership of the consumers and the routes it may
/// hold calls of. KEYS: alive, consumers, routes. ARGV: consumer, ttl in ms, routes...
pub(super) const HEARTBEAT: &str = r"#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], now + ttl, 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[1])
if #ARGV > 2 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 3))
end
return 1
";

/// Renews a process in one route's served set, scored by its heartbeat's expiry on that
/// route's node, and forgets the expired. KEYS: served. ARGV: consumer, ttl in ms.
pub(super) const SERVE: &str = r"#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
return 1
";

/// The reaper's claim: of the candidate consumers, those whose heartbeat expired and that
/// are still consumers (or whose earlier claim lapsed: its reaper died before finishing)
/// move to the reaping set with a claim lasting `claim_ms`; answers each with its routes.
/// So only one reaper at a time gets a dead consumer, and none is forgotten.
/// KEYS: consumers, alive of each candidate..., routes of each candidate..., reaping.
/// ARGV: this consumer, claim_ms, the candidates...
pub(super) const CLAIM: &str = r"#!lua
local n = #ARGV - 2
local reaping = KEYS[#KEYS]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claimed = {}
for j = 1, n do
  local id = ARGV[j + 2]
  if id ~= ARGV[1] and redis.call('EXISTS', KEYS[1 + j]) == 0 then
    local claim = redis.call('ZSCORE', reaping, id)
    local lapsed = claim and tonumber(claim) < now
    if redis.call('SREM', KEYS[1], id) == 1 or lapsed then
      redis.call('ZADD', reaping, now + tonumber(ARGV[2]), id)
      claimed[#claimed + 1] = {id, redis.call('SMEMBERS', KEYS[1 + n + j])}
    end
  end
end
return claimed
";

/// A dead consumer's routes were all put back: its claim and its routes go.
/// KEYS: reaping, routes. ARGV: consumer.
pub(super) const REAPED: &str = r"#!lua
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
";

/// This process leaves the consumers (after putting back its calls, route by route).
/// KEYS: alive, consumers, routes. ARGV: consumer.
pub(super) const LEAVE: &str = r"#!lua
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
";
