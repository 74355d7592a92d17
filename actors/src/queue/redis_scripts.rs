//! The Lua scripts of the Redis queue. Each runs atomically in Redis, so a call is in
//! exactly one list (a route's queue, or one process's processing list) at every moment,
//! whoever runs what at the same time. Every check of time uses Redis's clock.
//!
//! Keys are built inside the scripts from the prefix, so this is for a single Redis (or a
//! primary with replicas), not Redis Cluster.

/// Everything a process has for the queue at one moment, in one script call: acknowledge
/// answered calls (publishing their answers), push new calls, take calls for idle
/// workers; in the order given.
///
/// ARGV: prefix, notice channel, this process's processing list, then operations:
///
/// | operation | arguments | result |
/// | --- | --- | --- |
/// | `a` acknowledge | entry, answer channel (or empty), answer | 1, or 0 if the call was no longer held (put back meanwhile: then the answer is not published) |
/// | `p` push | route, entry | 1, or 0 if no live process serves the route |
/// | `t` take | max, route count, routes... | `{more (0/1), {entries...}}` |
///
/// A push publishes the "queue updated" notice only when the route's list was empty: while
/// it is not, every process serving the route knows already (its last take said more
/// wait, or it heard the notice of the push that filled the list after that take emptied
/// it), so it looks again as soon as a worker is free. A take moves calls oldest first,
/// from the first route that has any, then the next, into the processing list (newest at
/// its head). An acknowledgement looks for its call from the tail (`LREM -1`), where the
/// oldest calls are, which are answered first as a rule. The answer is published only if
/// the call was still held: a call put back meanwhile (its process was taken for dead, or
/// gave it back) is answered by whoever runs it next, so a call is answered here or put
/// back, never both.
pub(super) const EXCHANGE: &str = r"
local prefix, notice, processing = ARGV[1], ARGV[2], ARGV[3]
local results, served = {}, {}
local now
local i = 4
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'a' then
    local held = redis.call('LREM', processing, -1, ARGV[i + 1])
    if held == 1 and ARGV[i + 2] ~= '' then
      redis.call('PUBLISH', ARGV[i + 2], ARGV[i + 3])
    end
    results[#results + 1] = held
    i = i + 4
  elseif op == 'p' then
    local route = ARGV[i + 1]
    local ok = served[route]
    if ok == nil then
      if now == nil then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      ok = redis.call('ZCOUNT', prefix .. 'served:' .. route, now, '+inf') > 0
      served[route] = ok
    end
    if ok then
      if redis.call('RPUSH', prefix .. 'queue:' .. route, ARGV[i + 2]) == 1 then
        redis.call('PUBLISH', notice, route)
      end
      results[#results + 1] = 1
    else
      results[#results + 1] = 0
    end
    i = i + 3
  elseif op == 't' then
    local want, count = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local taken, more = {}, 0
    for j = i + 3, i + 2 + count do
      local key = prefix .. 'queue:' .. ARGV[j]
      local need = want - #taken
      if need > 0 then
        local entries = redis.call('LPOP', key, need)
        if entries then
          redis.call('LPUSH', processing, unpack(entries))
          for _, entry in ipairs(entries) do
            taken[#taken + 1] = entry
          end
          -- Fewer than asked: that list is empty now.
          if #entries == need and more == 0 and redis.call('LLEN', key) > 0 then
            more = 1
          end
        end
      elseif more == 0 and redis.call('LLEN', key) > 0 then
        more = 1
      end
    end
    results[#results + 1] = {more, taken}
    i = i + 3 + count
  else
    return redis.error_reply('unknown queue operation ' .. tostring(op))
  end
end
return results
";

/// Puts one taken call back at the head of its queue, only if this process still holds
/// it (so never twice), and tells the workers. KEYS: processing, queue.
/// ARGV: entry, notice channel, route. Returns 1 if put back, else 0.
pub(super) const REQUEUE: &str = r"
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
";

/// Renews a process's heartbeat and routes. KEYS: alive, consumers, served...
/// ARGV: consumer, ttl in ms.
pub(super) const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], now + ttl, 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], now + ttl, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. now)
end
return 1
";

/// Lua shared by REAP and LEAVE: `put_back(prefix, processing, notice)` moves every entry
/// of a processing list back to the head of its route's queue (oldest ends first, as it
/// was taken), an unreadable one to `P dead`, notifies the workers once per route, and
/// answers how many entries moved.
const PUT_BACK: &str = r"
local function put_back(prefix, processing, notice)
  local moved, routes = 0, {}
  while true do
    local entry = redis.call('LPOP', processing)
    if not entry then
      break
    end
    local ok, call = pcall(cjson.decode, entry)
    if ok and type(call) == 'table' and type(call.route) == 'string' then
      redis.call('LPUSH', prefix .. 'queue:' .. call.route, entry)
      routes[call.route] = true
    else
      redis.call('RPUSH', prefix .. 'dead', entry)
    end
    moved = moved + 1
  end
  for route in pairs(routes) do
    redis.call('PUBLISH', notice, route)
  end
  return moved
end
";

/// Puts back the calls of every consumer whose heartbeat expired. KEYS: consumers.
/// ARGV: prefix, this consumer, notice channel. Returns how many calls were put back.
pub(super) fn reap() -> String {
    format!(
        "{PUT_BACK}{}",
        r"
local prefix = ARGV[1]
local moved = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[2] and redis.call('EXISTS', prefix .. 'alive:' .. id) == 0 then
    moved = moved + put_back(prefix, prefix .. 'processing:' .. id, ARGV[3])
    redis.call('SREM', KEYS[1], id)
  end
end
return moved
"
    )
}

/// This process leaves: its calls go back, its heartbeat and registrations go.
/// KEYS: processing, alive, consumers, served... ARGV: prefix, this consumer, notice
/// channel. Returns how many calls were put back.
pub(super) fn leave() -> String {
    format!(
        "{PUT_BACK}{}",
        r"
local moved = put_back(ARGV[1], KEYS[1], ARGV[3])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
for i = 4, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[2])
end
return moved
"
    )
}
