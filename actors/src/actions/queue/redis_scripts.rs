//! The Lua scripts of the Redis queue. Each runs atomically in Redis, so a call is in
//! exactly one list (a route's queue, or one process's processing list) at every moment,
//! whoever runs what at the same time. Every check of time uses Redis's clock.
//!
//! Keys are built inside the scripts from the prefix, so these are for a single Redis (or
//! a primary with replicas); on a Redis Cluster the queue runs `redis_cluster_scripts.rs`.

/// Everything a process has for the queue at one moment, in one script call: acknowledge
/// answered calls (publishing their answers), push new calls, take calls for idle
/// workers; in the order given.
///
/// ARGV: prefix, notice channel, this process's processing list, then operations:
///
/// | operation | arguments | result |
/// | --- | --- | --- |
/// | `a` acknowledge | entry, answer channel (or empty), answer | 1, or 0 if the call was no longer held (put back meanwhile: then the answer is not published) |
/// | `p` push | route, entry, ms left before the caller gives up | 1, or 0 if no live process serves the route |
/// | `t` take | max, route count, routes... | `{more (0/1), {entries...}}` |
///
/// A push makes the route's list live at least as long as the call's time left (`PEXPIRE`,
/// never shortened): every call in a list was pushed before its last push, so when no
/// push came for that long, every call in it is past its deadline, its caller was told
/// `timeout`, and the list goes. So calls for a route whose processes all died (or that
/// no process takes in time) never run late and never stay in Redis for ever.
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
      local key = prefix .. 'queue:' .. route
      if redis.call('RPUSH', key, ARGV[i + 2]) == 1 then
        redis.call('PUBLISH', notice, route)
      end
      local ttl = tonumber(ARGV[i + 3])
      if redis.call('PTTL', key) < ttl then
        redis.call('PEXPIRE', key, ttl)
      end
      results[#results + 1] = 1
    else
      results[#results + 1] = 0
    end
    i = i + 4
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
/// it (so never twice), and tells the workers; the queue lives at least as long as the
/// call's time left. KEYS: processing, queue. ARGV: entry, notice channel, route, ms
/// left. Returns 1 if put back, else 0.
pub(super) const REQUEUE: &str = r"
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  local ttl = tonumber(ARGV[4])
  if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
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

/// Lua shared by REAP and LEAVE: `put_back(prefix, processing, notice, dead_max, dead_ttl)`
/// moves every entry of a processing list back to the head of its route's queue (oldest
/// ends first, as it was taken), an unreadable one to `P dead` (kept at most `dead_max`
/// long and `dead_ttl` ms after the last addition), notifies the workers once per route,
/// and answers how many entries moved and how many of them went to `P dead`.
///
/// A queue a call goes back to keeps living at least `ttl_ms` (the call's own time
/// left, see `EXCHANGE`), so that it does not outlive its calls forever either.
const PUT_BACK: &str = r"
local function put_back(prefix, processing, notice, dead_max, dead_ttl)
  local moved, dead, routes = 0, 0, {}
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  while true do
    local entry = redis.call('LPOP', processing)
    if not entry then
      break
    end
    local ok, call = pcall(cjson.decode, entry)
    if ok and type(call) == 'table' and type(call.route) == 'string' then
      local key = prefix .. 'queue:' .. call.route
      redis.call('LPUSH', key, entry)
      if type(call.deadline_ms) == 'number' then
        local left = math.floor(call.deadline_ms - now)
        if left > 0 and redis.call('PTTL', key) < left then
          redis.call('PEXPIRE', key, left)
        end
      end
      routes[call.route] = true
    else
      redis.call('RPUSH', prefix .. 'dead', entry)
      redis.call('LTRIM', prefix .. 'dead', -dead_max, -1)
      redis.call('PEXPIRE', prefix .. 'dead', dead_ttl)
      dead = dead + 1
    end
    moved = moved + 1
  end
  for route in pairs(routes) do
    redis.call('PUBLISH', notice, route)
  end
  return {moved, dead}
end
";

/// Puts back the calls of every consumer whose heartbeat expired. KEYS: consumers.
/// ARGV: prefix, this consumer, notice channel, dead_max, dead_ttl in ms. Returns how
/// many calls were put back and how many of them were set aside in `P dead`.
pub(super) fn reap() -> String {
    format!(
        "{PUT_BACK}{}",
        r"
local prefix = ARGV[1]
local moved, dead = 0, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[2] and redis.call('EXISTS', prefix .. 'alive:' .. id) == 0 then
    local put = put_back(prefix, prefix .. 'processing:' .. id, ARGV[3],
      tonumber(ARGV[4]), tonumber(ARGV[5]))
    moved, dead = moved + put[1], dead + put[2]
    redis.call('SREM', KEYS[1], id)
  end
end
return {moved, dead}
"
    )
}

/// This process leaves: its calls go back, its heartbeat and registrations go.
/// KEYS: processing, alive, consumers, served... ARGV: prefix, this consumer, notice
/// channel, dead_max, dead_ttl in ms. Returns as [`reap`] does.
pub(super) fn leave() -> String {
    format!(
        "{PUT_BACK}{}",
        r"
local put = put_back(ARGV[1], KEYS[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
for i = 4, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[2])
end
return put
"
    )
}
