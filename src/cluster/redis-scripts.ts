/**
 * The Lua scripts of RedisClusterState. Every change to the shared state is one of these scripts,
 * so that it is atomic; the keys are built here, from names passed as arguments, because the
 * reaper only learns which keys to touch from the entries it reads (standalone Redis only: these
 * scripts do not declare their keys, as Redis Cluster would need).
 *
 * Names (projects, rooms, users) arrive as UTF-16BE bytes: byte order is then code unit order, so
 * ZRANGE BYLEX sorts as the interface does, and any JavaScript string, a lone surrogate included,
 * survives the trip exactly.
 *
 * Keys, after P = `${prefix}cs:`:
 *   instances      ZSET instance id → lease expiry (ms, Redis TIME: no clock skew between instances)
 *   e:ID           HASH entry → connections of that instance (what reaping it takes away)
 *   o:ID           LIST transitions of that instance's calls not yet acknowledged, one per call
 *   graves         SET  of g:N, entry hashes of dead instances still being reaped, a chunk a call
 *   totals         HASH connections, users (summed over projects), rooms: totals() is O(1)
 *   pc:P           HASH user → connections in project P's scope (HLEN: distinct users)
 *   pn:P           STRING connections in project P
 *   pr:P           ZSET rooms of P with a user present (score 0, paged BYLEX)
 *   ru:LEN:P R     ZSET users present in room R (score 0, paged BYLEX; ZCARD: count)
 *   rc:LEN:P R     HASH user → connections in room R
 *   b:P            HASH tokens, at: the token bucket of project P
 *   s:SEC:P, S:SEC STRING messages stored in that second (of P, of all), expiring after 20 s
 * An entry (field of e:ID) is 'p' LEN ':' P USER for a project scope, 'r' LEN ':' P LEN ':' R USER
 * for a room: every name but the last carries its byte length, so any bytes are unambiguous.
 */

const PRELUDE = `
local P = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function k_rusers(p, r) return P .. 'ru:' .. #p .. ':' .. p .. r end
local function k_rconns(p, r) return P .. 'rc:' .. #p .. ':' .. p .. r end

local function entry(p, r, u)
  if r == false then return 'p' .. #p .. ':' .. p .. u end
  return 'r' .. #p .. ':' .. p .. #r .. ':' .. r .. u
end

local function parse(f)
  local colon = string.find(f, ':', 2, true)
  local plen = tonumber(string.sub(f, 2, colon - 1))
  local p = string.sub(f, colon + 1, colon + plen)
  local rest = colon + plen + 1
  if string.sub(f, 1, 1) == 'p' then return p, false, string.sub(f, rest) end
  local colon2 = string.find(f, ':', rest, true)
  local rlen = tonumber(string.sub(f, rest, colon2 - 1))
  return p, string.sub(f, colon2 + 1, colon2 + rlen), string.sub(f, colon2 + rlen + 1)
end
`;

/** Changes to the aggregates, shared by the scripts that write. */
const WRITE = `
-- Changes to counters every entry would touch (a project's connections, the totals) are summed
-- here and written once by settle(): a script of 2000 entries makes a few calls for them, not 6000.
local acc_pn, acc_c, acc_u, acc_r = {}, 0, 0, 0

local function settle()
  for p, d in pairs(acc_pn) do
    if d ~= 0 and redis.call('INCRBY', P .. 'pn:' .. p, d) <= 0 then redis.call('DEL', P .. 'pn:' .. p) end
  end
  local totals = P .. 'totals'
  if acc_c ~= 0 then redis.call('HINCRBY', totals, 'connections', acc_c) end
  if acc_u ~= 0 then redis.call('HINCRBY', totals, 'users', acc_u) end
  if acc_r ~= 0 then redis.call('HINCRBY', totals, 'rooms', acc_r) end
  acc_pn, acc_c, acc_u, acc_r = {}, 0, 0, 0
end

-- The size of a room's user set after a ZADD (d = 1) or a ZREM (d = -1) of a member it did not
-- (did) hold: asked of Redis once per script and room, then kept here.
local cards = {}
local function card(users, d)
  local n = cards[users]
  if n then n = n + d else n = redis.call('ZCARD', users) end
  cards[users] = n
  return n
end

-- Adds delta to a hash counter, never below zero; returns the count before and after.
local function bump(key, field, delta)
  local after = redis.call('HINCRBY', key, field, delta)
  local before = math.max(0, after - delta)
  if after <= 0 then
    redis.call('HDEL', key, field)
    after = 0
  end
  return before, after
end

-- Adds delta to the connections of u in a scope. Returns '1' when u became present in the room,
-- '0' when they left it, nil otherwise (and always for a project scope). Call settle() after.
local function change(p, r, u, delta)
  if delta == 0 then return nil end
  if r == false then
    local before, after = bump(P .. 'pc:' .. p, u, delta)
    acc_pn[p] = (acc_pn[p] or 0) + after - before
    acc_c = acc_c + after - before
    if before == 0 and after > 0 then acc_u = acc_u + 1 end
    if before > 0 and after == 0 then acc_u = acc_u - 1 end
    return nil
  end
  local before, after = bump(k_rconns(p, r), u, delta)
  local users = k_rusers(p, r)
  if before == 0 and after > 0 then
    redis.call('ZADD', users, 0, u)
    if card(users, 1) == 1 then
      redis.call('ZADD', P .. 'pr:' .. p, 0, r)
      acc_r = acc_r + 1
    end
    return '1'
  end
  if before > 0 and after == 0 then
    redis.call('ZREM', users, u)
    if card(users, -1) == 0 then
      redis.call('ZREM', P .. 'pr:' .. p, r)
      acc_r = acc_r - 1
    end
    return '0'
  end
  return nil
end

-- Moves an instance's entries to a grave, to be reaped a chunk at a time, and drops its lease.
local function bury(id)
  local entries = P .. 'e:' .. id
  if redis.call('EXISTS', entries) == 1 then
    local grave = P .. 'g:' .. redis.call('INCR', P .. 'graveseq')
    redis.call('RENAME', entries, grave)
    redis.call('SADD', P .. 'graves', grave)
  end
  redis.call('ZREM', P .. 'instances', id)
  redis.call('DEL', P .. 'o:' .. id)
end

-- Buries lapsed leases, then takes away up to budget entries of graves. Returns whether any is
-- left for another call.
local function reap(now, budget, out)
  local dead = redis.call('ZRANGEBYSCORE', P .. 'instances', '-inf', now, 'LIMIT', 0, 10)
  for _, id in ipairs(dead) do bury(id) end
  local graves = redis.call('SRANDMEMBER', P .. 'graves', 10)
  for _, grave in ipairs(graves) do
    if budget <= 0 then break end
    local taken = redis.call('HRANDFIELD', grave, budget, 'WITHVALUES')
    for i = 1, #taken, 2 do
      local f = taken[i]
      redis.call('HDEL', grave, f)
      local p, r, u = parse(f)
      local t = change(p, r, u, -tonumber(taken[i + 1]))
      if t then table.insert(out, {t, f, p, r, u}) end
    end
    budget = budget - #taken / 2
    if redis.call('EXISTS', grave) == 0 then redis.call('SREM', P .. 'graves', grave) end
  end
  settle()
  return #dead == 10 or redis.call('SCARD', P .. 'graves') > 0
end
`;

/**
 * One call of the writer of an instance. ARGV: P, id, leaseMs, seq, ack, mode, reap (how many
 * entries of graves to take away after burying lapsed leases; '0': none), N, N × (kind 'p'|'r', project, room, user, connections),
 * M, M × (project, user, maxConnections, maxConnectionsPerUser; '' for no limit).
 *
 * Modes: 'start' takes the lease afresh (burying what an earlier holder of this id left); 'run'
 * needs the lease and answers {0} at once, changing nothing, when it is gone (reaped); 'release'
 * buries this instance and reaps a first chunk; 'drain' only reaps.
 *
 * An entry sets this instance's connections of a user in a scope to an absolute count (the delta
 * against its entry is applied to the aggregates): sending it twice changes nothing, so a call
 * whose answer was lost is simply sent again. Admissions are judged after the entries, in order.
 *
 * Transitions of 'start' and 'run' are appended to o:ID under `seq` and the whole list is
 * returned; `ack` drops those of calls up to it, whose answers arrived. A transition whose answer
 * was lost thus comes back with the next call, and is reported once. ('release' and 'drain' return
 * theirs directly: a closing instance makes no next call.)
 *
 * Returns {1, instances alive, more to reap (0|1), {admission: 0 admitted, 1 projectFull,
 * 2 userFull, ...}, {seq, '1'|'0', project, room, user, ...}}.
 */
export const SYNC = `${PRELUDE}${WRITE}
local id, ttl, seq, ack, mode = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]
local now = now_ms()
local instances = P .. 'instances'
local out = {}
local more = false
if mode == 'start' then
  bury(id)
  redis.call('ZADD', instances, now + ttl, id)
elseif mode == 'run' then
  if not redis.call('ZSCORE', instances, id) then return {0} end
  redis.call('ZADD', instances, 'XX', now + ttl, id)
elseif mode == 'release' then
  bury(id)
end

local entries = P .. 'e:' .. id
local n = tonumber(ARGV[8])
local i = 9
for _ = 1, n do
  local r = ARGV[i + 2]
  if ARGV[i] == 'p' then r = false end
  local p, u, count = ARGV[i + 1], ARGV[i + 3], tonumber(ARGV[i + 4])
  local f = entry(p, r, u)
  local old = tonumber(redis.call('HGET', entries, f) or '0')
  if count ~= old then
    if count <= 0 then redis.call('HDEL', entries, f) else redis.call('HSET', entries, f, count) end
    local t = change(p, r, u, count - old)
    if t then table.insert(out, {t, f, p, r, u}) end
  end
  i = i + 5
end
settle()

local verdicts = {}
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  local p, u, maxc, maxu = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local verdict = 0
  if maxc ~= '' and tonumber(redis.call('GET', P .. 'pn:' .. p) or '0') >= tonumber(maxc) then
    verdict = 1
  elseif maxu ~= '' and tonumber(redis.call('HGET', P .. 'pc:' .. p, u) or '0') >= tonumber(maxu) then
    verdict = 2
  else
    redis.call('HINCRBY', entries, entry(p, false, u), 1)
    change(p, false, u, 1)
    settle()
  end
  table.insert(verdicts, verdict)
  i = i + 4
end

if ARGV[7] ~= '0' then more = reap(now, tonumber(ARGV[7]), out) end

local reported = {}
local function push(s, flag, p, r, u)
  for _, v in ipairs({s, flag, p, r, u}) do table.insert(reported, v) end
end
if mode == 'release' or mode == 'drain' then
  for _, t in ipairs(out) do push(seq, t[1], t[3], t[4], t[5]) end
else
  -- One element per call: seq ':' then, per transition, flag LEN ':' entry.
  local outbox = P .. 'o:' .. id
  while true do
    local head = redis.call('LINDEX', outbox, 0)
    if not head or tonumber(string.sub(head, 1, string.find(head, ':', 1, true) - 1)) > ack then break end
    redis.call('LPOP', outbox)
  end
  for _, held in ipairs(redis.call('LRANGE', outbox, 0, -1)) do
    local colon = string.find(held, ':', 1, true)
    local s, pos = string.sub(held, 1, colon - 1), colon + 1
    while pos <= #held do
      local c = string.find(held, ':', pos + 1, true)
      local len = tonumber(string.sub(held, pos + 1, c - 1))
      local p, r, u = parse(string.sub(held, c + 1, c + len))
      push(s, string.sub(held, pos, pos), p, r, u)
      pos = c + len + 1
    end
  end
  if #out > 0 then
    local parts = {}
    for _, t in ipairs(out) do
      table.insert(parts, t[1] .. #t[2] .. ':' .. t[2])
      push(seq, t[1], t[3], t[4], t[5])
    end
    redis.call('RPUSH', outbox, seq .. ':' .. table.concat(parts))
  end
end
local alive = redis.call('ZCOUNT', instances, '(' .. now, '+inf')
return {1, alive, more and 1 or 0, verdicts, reported}
`;

/** ARGV: P, project, room, after ('' when from the start), hasAfter '1'|'0', limit. */
export const PRESENCE = `${PRELUDE}
local users_key, conns_key = k_rusers(ARGV[2], ARGV[3]), k_rconns(ARGV[2], ARGV[3])
local min = '-'
if ARGV[5] == '1' then min = '(' .. ARGV[4] end
local users = redis.call('ZRANGE', users_key, min, '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[6]))
local conns = {}
for i = 1, #users, 500 do
  local chunk = {}
  for j = i, math.min(i + 499, #users) do table.insert(chunk, users[j]) end
  for _, c in ipairs(redis.call('HMGET', conns_key, unpack(chunk))) do table.insert(conns, c) end
end
return {redis.call('ZCARD', users_key), users, conns}
`;

/** ARGV: P, project, after, hasAfter, limit. Returns {rooms, present counts}. */
export const ROOMS = `${PRELUDE}
local min = '-'
if ARGV[4] == '1' then min = '(' .. ARGV[3] end
local rooms = redis.call('ZRANGE', P .. 'pr:' .. ARGV[2], min, '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[5]))
local present = {}
for _, r in ipairs(rooms) do table.insert(present, redis.call('ZCARD', k_rusers(ARGV[2], r))) end
return {rooms, present}
`;

/** ARGV: P, project ('' and hasProject '0' for the totals), hasProject. */
export const COUNTS = `${PRELUDE}
if ARGV[3] == '1' then
  local p = ARGV[2]
  return {tonumber(redis.call('GET', P .. 'pn:' .. p) or '0'), redis.call('HLEN', P .. 'pc:' .. p),
    redis.call('ZCARD', P .. 'pr:' .. p), 0}
end
local t = redis.call('HMGET', P .. 'totals', 'connections', 'users', 'rooms')
return {tonumber(t[1] or '0'), tonumber(t[2] or '0'), tonumber(t[3] or '0'),
  redis.call('ZCOUNT', P .. 'instances', '(' .. now_ms(), '+inf')}
`;

/**
 * The shared token bucket. ARGV: P, project, perSecond, burst, want. A bucket not seen (or expired:
 * it expires once it would be full again) starts full. Grants min(want, whole tokens).
 */
export const TAKE = `${PRELUDE}
local key = P .. 'b:' .. ARGV[2]
local rate, burst, want = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if not tokens or not at then tokens, at = burst, now end
local elapsed = math.max(0, now - at)
tokens = math.min(burst, tokens + elapsed * math.max(0, rate) / 1000)
local granted = math.max(0, math.min(math.floor(want), math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', key, 'tokens', string.format('%.6f', tokens), 'at', string.format('%.3f', now))
local full_ms = 60000
if rate > 0 then full_ms = math.ceil((burst - tokens) / rate * 1000) + 1000 end
redis.call('PEXPIRE', key, full_ms)
return granted
`;

/** ARGV: P, total, then project, count pairs: adds them to the buckets of this second. */
export const RECORD = `${PRELUDE}
local sec = redis.call('TIME')[1]
local all = P .. 'S:' .. sec
redis.call('INCRBY', all, ARGV[2])
redis.call('EXPIRE', all, 20)
for i = 3, #ARGV, 2 do
  local key = P .. 's:' .. sec .. ':' .. ARGV[i]
  redis.call('INCRBY', key, ARGV[i + 1])
  redis.call('EXPIRE', key, 20)
end
return 1
`;

/** ARGV: P, project, hasProject. Returns the sum over the last 10 seconds, this one included. */
export const STORED = `${PRELUDE}
local sec = tonumber(redis.call('TIME')[1])
local keys = {}
for s = sec - 9, sec do
  if ARGV[3] == '1' then table.insert(keys, P .. 's:' .. s .. ':' .. ARGV[2])
  else table.insert(keys, P .. 'S:' .. s) end
end
local total = 0
for _, v in ipairs(redis.call('MGET', unpack(keys))) do total = total + tonumber(v or '0') end
return total
`;
