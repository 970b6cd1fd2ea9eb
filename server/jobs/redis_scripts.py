"""The Lua scripts behind `RedisTaskQueue` (layout: see `server/jobs/redis.py`).

Each script runs atomically: no other command interleaves, which is what makes cancel-vs-claim,
the fairness pick and fenced commits race-free. Scripts build some key names from the prefix
(`ARGV[1]`), so they assume a standalone Redis (or one hash slot: a prefix like `{paddock}:`).
Every script returns a table whose first element is a tag ('ok', 'claim', 'skip', ...).
"""

from __future__ import annotations

# Shared helpers, prepended to the scripts that start or end attempts.
_HELPERS = """
local P = ARGV[1]
local FINAL = {SUCCEEDED = true, FAILED = true, CANCELED = true}
local function notify(h, status)
  -- The task's webhook delivery (redis_outbox.py), queued in the step that makes it final: a
  -- crash between the commit and the notification cannot lose it. Due now, by Redis's clock.
  local url = redis.call('HGET', h, 'webhook')
  if not url then return end
  local id = redis.call('HGET', h, 'id')
  local d = P .. 'webhook:' .. id
  redis.call('HSET', d, 'task_id', id, 'tenant', redis.call('HGET', h, 'tenant') or '', 'url', url,
    'status', status, 'attempt', 0)
  local left = redis.call('PTTL', h)
  if left > 0 then redis.call('PEXPIRE', d, left) end
  local t = redis.call('TIME')
  redis.call('ZADD', P .. 'webhooks', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), id)
end
local function set_status(h, new)
  -- Every status change goes through here, so the per-status list index never drifts, and every
  -- final one queues the task's webhook.
  local old = redis.call('HGET', h, 'status')
  redis.call('HSET', h, 'status', new)
  if old == new then return end
  if FINAL[new] then notify(h, new) end
  local id, t = redis.call('HGET', h, 'id'), redis.call('HGET', h, 'tenant')
  local score = redis.call('HGET', h, 'submit')
  if not (id and t and score) then return end  -- a record written before the index existed
  local base = P .. 'tenant:' .. t .. ':status:'
  if old then redis.call('ZREM', base .. old, id) end
  redis.call('ZADD', base .. new, score, id)
  local left = redis.call('PTTL', h)
  if redis.call('PTTL', base .. new) < left then redis.call('PEXPIRE', base .. new, left) end
end
local function start_attempt(h, entry, now)
  redis.call('HINCRBY', h, 'attempt', 1)
  set_status(h, 'RUNNING')
  redis.call('HSET', h, 'scheduled_time', now, 'entry', entry)
  redis.call('HDEL', h, 'progress_step', 'progress_total')
  local row = redis.call('HGETALL', h)
  table.insert(row, 1, 'claim')
  return row
end
local function wake()
  -- One token per job that became claimable; idle workers BLPOP this list.
  local key = P .. 'wake'
  redis.call('RPUSH', key, 1)
  redis.call('LTRIM', key, -16, -1)
  redis.call('PEXPIRE', key, 60000)
end
local function group_ready(stream, group)
  -- Checked before any write: a script that errors half-way keeps its earlier writes.
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if groups.err then return false end
  for _, g in ipairs(groups) do
    if g[2] == group then return true end
  end
  return false
end
local function drop_entry(stream, group, entry)
  -- XACK alone leaves the entry in the stream; XDEL keeps the stream holding only live jobs.
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
end
"""

# KEYS: hash, tenant index zset, pending list, rotation zset, rate bucket, quota hash, seq, then
# the model index and (when the task has one) the workspace index.
# ARGV: prefix, task_id, expire_at_ms, score, trim_before, now_ms, tenant, rate, running cap,
# pending cap, depth cap, ttl_ms, json, idempotency key ('' for none), its fingerprint, its ttl_ms,
# field/value pairs...
# Admission order: idempotency key, duplicate, global depth, tenant pending, then the rate bucket,
# so that a refused submit never spends a token. The key is checked and bound in this one script:
# of concurrent submits with one key, exactly one stores a task.
SUBMIT = (
    _HELPERS
    + """
local idem, fp = ARGV[14], ARGV[15]
if idem ~= '' then
  local held = redis.call('HMGET', idem, 'task', 'fp')
  if held[1] and redis.call('EXISTS', P .. 'task:' .. held[1]) == 1 then
    if held[2] == fp then return {'existing', held[1]} end
    return {'conflict', held[1]}
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- The same record again is a retried call whose reply was lost (redis-py Retry): succeed.
  if redis.call('HGET', KEYS[1], 'json') == ARGV[13] then return {'ok'} end
  return {'duplicate'}
end
local depth_cap = tonumber(ARGV[11])
if depth_cap then
  local total = 0
  for _, t in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    total = total + redis.call('LLEN', P .. 'pending:' .. t)
  end
  if total >= depth_cap then return {'depth'} end
end
local pending_cap = tonumber(ARGV[10])
if pending_cap and redis.call('LLEN', KEYS[3]) >= pending_cap then return {'pending'} end
local rate = tonumber(ARGV[8])
if rate then
  -- Token bucket: capacity max(1, rate) tokens, refilled at `rate` per second.
  local now, cap = tonumber(ARGV[6]), math.max(1, rate)
  local b = redis.call('HMGET', KEYS[5], 'tokens', 'ts')
  local tokens = math.min(cap, (tonumber(b[1]) or cap) + (now - (tonumber(b[2]) or now)) / 1000 * rate)
  if tokens < 1 then return {'rate'} end
  redis.call('HSET', KEYS[5], 'tokens', tostring(tokens - 1), 'ts', ARGV[6])
  redis.call('PEXPIRE', KEYS[5], math.ceil(cap / rate * 1000) + 1000)
end
redis.call('HSET', KEYS[1], 'json', ARGV[13], 'id', ARGV[2], 'submit', ARGV[4], unpack(ARGV, 17))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
if idem ~= '' then
  -- Bound until its TTL or the task's expiry, whichever comes first; `idem` lets DELETE free it.
  redis.call('HSET', idem, 'task', ARGV[2], 'fp', fp)
  local until_task = tonumber(ARGV[3]) - tonumber(ARGV[6])
  redis.call('PEXPIRE', idem, math.max(math.min(tonumber(ARGV[16]), until_task), 1))
  redis.call('HSET', KEYS[1], 'idem', idem)
end
-- The list indexes: every task by submit time, and by model, workspace and status. Entries of
-- expired records are trimmed here; readers skip any left since (their score is too old).
local left = math.max(tonumber(ARGV[3]) - tonumber(ARGV[6]), 1)
local function index(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[5])
  redis.call('ZADD', key, ARGV[4], ARGV[2])
  if redis.call('PTTL', key) < left then redis.call('PEXPIRE', key, left) end
end
index(KEYS[2])
for i = 8, #KEYS do index(KEYS[i]) end
for _, st in ipairs({'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED'}) do
  redis.call('ZREMRANGEBYSCORE', KEYS[2] .. ':status:' .. st, '-inf', '(' .. ARGV[5])
end
index(KEYS[2] .. ':status:PENDING')
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[12])
if ARGV[9] == '' then redis.call('HDEL', KEYS[6], 'running')
else redis.call('HSET', KEYS[6], 'running', ARGV[9]); redis.call('PEXPIRE', KEYS[6], ARGV[12]) end
-- Join the rotation just before the most recently served tenant: after every tenant already
-- waiting, ahead of the one that was just given a job (round robin, no starvation).
local seq = tonumber(redis.call('GET', KEYS[7]) or '0')
redis.call('ZADD', KEYS[4], 'NX', seq - 0.5, ARGV[7])
redis.call('PEXPIRE', KEYS[4], ARGV[12])
wake()
return {'ok'}
"""
)

# KEYS: stream, rotation zset, seq. ARGV: prefix, group, consumer, now, now_ms, maxlen, scan.
# Picks the least recently served tenant whose running count is below its cap, pops its oldest
# PENDING id, XADDs it and delivers it to this consumer with a non-blocking XREADGROUP, so the
# group's PEL holds exactly the claimed jobs and XAUTOCLAIM can recover them.
CLAIM = (
    _HELPERS
    + """
if not group_ready(KEYS[1], ARGV[2]) then return {'nogroup'} end
local now_ms = tonumber(ARGV[5])
local function under_cap(t)
  local cap = tonumber(redis.call('HGET', P .. 'quota:' .. t, 'running'))
  if not cap then return true end
  local rk = P .. 'running:' .. t
  redis.call('ZREMRANGEBYSCORE', rk, '-inf', now_ms)  -- ids whose record expired meanwhile
  return redis.call('ZCARD', rk) < cap
end
local function deliver(entry)
  -- '>' hands out the oldest never-delivered entry. Every XADD is read in the same script, so
  -- that is ours; anything older is a leftover (acked and deleted, its task re-queued).
  for _ = 1, 100 do
    local got = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
    local e = got[1][2][1]
    if e[1] == entry then return end
    drop_entry(KEYS[1], ARGV[2], e[1])
  end
end
local function take(t, id)
  local h = P .. 'task:' .. id
  local entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'task_id', id, 'tenant', t)
  deliver(entry)
  local rk = P .. 'running:' .. t
  redis.call('ZADD', rk, now_ms + math.max(redis.call('PTTL', h), 0), id)
  redis.call('PEXPIRE', rk, math.max(redis.call('PTTL', h), redis.call('PTTL', rk), 1))
  return start_attempt(h, entry, ARGV[4])
end
for _, t in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[7]) - 1)) do
  local plist = P .. 'pending:' .. t
  if under_cap(t) then
    local id = redis.call('LPOP', plist)
    -- Ids of canceled or expired tasks are skipped (cancel LREMs, but expiry does not).
    while id and redis.call('HGET', P .. 'task:' .. id, 'status') ~= 'PENDING' do
      id = redis.call('LPOP', plist)
    end
    if id then
      if redis.call('LLEN', plist) == 0 then redis.call('ZREM', KEYS[2], t)
      else redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), t) end
      return take(t, id)
    end
  end
  if redis.call('LLEN', plist) == 0 then redis.call('ZREM', KEYS[2], t) end
end
return {'none'}
"""
)

# KEYS: stream, dead-letter stream. ARGV: prefix, group, consumer, min_idle_ms, now,
# max_attempts, dead maxlen, ttl_ms, message template.
# XAUTOCLAIM moves the oldest entry idle for min_idle_ms (its worker stopped heartbeating) to
# this consumer and bumps its delivery count; the task's `lost` count decides: next attempt, or
# FAILED as a poison job (acked, id to the dead-letter stream).
RECLAIM = (
    _HELPERS
    + """
if not group_ready(KEYS[1], ARGV[2]) then return {'nogroup'} end
local cursor, e = '0-0', nil
for _ = 1, 10 do
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[2], ARGV[3], ARGV[4], cursor, 'COUNT', 1)
  cursor, e = r[1], r[2][1]
  if e or cursor == '0-0' then break end  -- deleted entries come back in r[3], not r[2]
end
if not e then return {'none'} end
local entry, f = e[1], {}
for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
local id, t = f['task_id'] or '', f['tenant'] or ''
local h = P .. 'task:' .. id
local rk = P .. 'running:' .. t
local st = redis.call('HGET', h, 'status')
if st ~= 'RUNNING' or redis.call('HGET', h, 'entry') ~= entry then
  drop_entry(KEYS[1], ARGV[2], entry)
  if st ~= 'RUNNING' then redis.call('ZREM', rk, id) end
  return {'skip'}
end
local lost = redis.call('HINCRBY', h, 'lost', 1)
if lost < tonumber(ARGV[6]) then return start_attempt(h, entry, ARGV[5]) end
set_status(h, 'FAILED')
redis.call('HSET', h, 'end_time', ARGV[5], 'code', 'InternalError', 'message', string.format(ARGV[9], lost))
drop_entry(KEYS[1], ARGV[2], entry)
redis.call('ZREM', rk, id)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'task_id', id, 'tenant', t, 'lost', lost)
redis.call('PEXPIRE', KEYS[2], ARGV[8])
wake()
return {'poison', id}
"""
)

# KEYS: hash. ARGV: prefix, now, task_id. Only PENDING cancels; the id leaves its tenant's list in the
# same script, so a claim either popped it first (and the task is RUNNING) or never sees it.
CANCEL = (
    _HELPERS
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'PENDING' then return {'none'} end
set_status(KEYS[1], 'CANCELED')
redis.call('HSET', KEYS[1], 'end_time', ARGV[2])
local t = redis.call('HGET', KEYS[1], 'tenant') or ''
redis.call('LREM', P .. 'pending:' .. t, 1, ARGV[3])
local row = redis.call('HGETALL', KEYS[1])
table.insert(row, 1, 'ok')
return row
"""
)

# KEYS: hash, stream, rotation zset. ARGV: prefix, attempt, mode, group, entry id, consumer,
# task_id, ttl_ms, field/value pairs... Every worker write goes through this fence: the record
# must be RUNNING under this very attempt, so stale attempts and final records are never written.
FENCED = (
    _HELPERS
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'RUNNING'
    or redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[2] then
  return {'fenced'}
end
local mode = ARGV[3]
if #ARGV > 8 then
  local fields = {}
  for i = 9, #ARGV, 2 do
    if ARGV[i] == 'status' then set_status(KEYS[1], ARGV[i + 1])
    else table.insert(fields, ARGV[i]); table.insert(fields, ARGV[i + 1]) end
  end
  if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
end
if mode == 'heartbeat' then
  -- min-idle 0 + JUSTID: resets the entry's idle time without bumping its delivery count.
  redis.call('XCLAIM', KEYS[2], ARGV[4], ARGV[6], 0, ARGV[5], 'JUSTID')
  return {'ok'}
end
if mode ~= 'final' and mode ~= 'release' then return {'ok'} end
local t = redis.call('HGET', KEYS[1], 'tenant') or ''
drop_entry(KEYS[2], ARGV[4], ARGV[5])
redis.call('ZREM', P .. 'running:' .. t, ARGV[7])  -- the tenant's running slot is free again
if mode == 'release' then
  redis.call('HDEL', KEYS[1], 'scheduled_time', 'progress_step', 'progress_total', 'entry')
  local plist = P .. 'pending:' .. t
  redis.call('LPUSH', plist, ARGV[7])
  redis.call('PEXPIRE', plist, ARGV[8])
  -- Front of its tenant's list and of the rotation: a handed-back job is taken next.
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[3], 'LT', (tonumber(first[2]) or 0) - 1, t)
end
wake()
return {'ok'}
"""
)

# KEYS: rotation zset. ARGV: prefix. Jobs waiting to be claimed: the tenants' lists together.
DEPTH = """
local total = 0
for _, t in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  total = total + redis.call('LLEN', ARGV[1] .. 'pending:' .. t)
end
return total
"""

# KEYS: the index zsets to intersect (the tenant's, then status/model/workspace ones), then a
# scratch key. ARGV: prefix, min score (exclusive form allowed), max score, offset, count, order
# (`desc`: newest first, `asc`: oldest first). One page of ids and the total: Z(REV)RANGEBYSCORE
# ... LIMIT on the single index or on their intersection, so a page costs a page whatever the
# tenant has stored.
LIST = """
local n = #KEYS - 1
local src = KEYS[1]
if n > 1 then
  -- Score of the intersection = the first index's score (submit time): weights 1, 0, 0...
  local args = {KEYS[n + 1], n}
  for i = 1, n do table.insert(args, KEYS[i]) end
  table.insert(args, 'WEIGHTS')
  for i = 1, n do table.insert(args, i == 1 and 1 or 0) end
  redis.call('ZINTERSTORE', unpack(args))
  src = KEYS[n + 1]
end
local total = redis.call('ZCOUNT', src, ARGV[2], ARGV[3])
local ids
if ARGV[6] == 'asc' then ids = redis.call('ZRANGEBYSCORE', src, ARGV[2], ARGV[3], 'LIMIT', ARGV[4], ARGV[5])
else ids = redis.call('ZREVRANGEBYSCORE', src, ARGV[3], ARGV[2], 'LIMIT', ARGV[4], ARGV[5]) end
if n > 1 then redis.call('DEL', src) end
return {total, ids}
"""

# KEYS: hash, webhook due zset. ARGV: prefix, task_id. Removes a final record, its list index
# entries, its idempotency key and any delivery still waiting; an active task is left alone.
DELETE = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'none'} end
if st ~= 'SUCCEEDED' and st ~= 'FAILED' and st ~= 'CANCELED' then return {'active'} end
local id, t = ARGV[2], redis.call('HGET', KEYS[1], 'tenant') or ''
local frozen = cjson.decode(redis.call('HGET', KEYS[1], 'json'))
local base = ARGV[1] .. 'tenant:' .. t
redis.call('ZREM', base, id)
redis.call('ZREM', base .. ':status:' .. st, id)
redis.call('ZREM', base .. ':model:' .. frozen['model'], id)
local ws = frozen['workspace']
if type(ws) == 'string' then redis.call('ZREM', base .. ':ws:' .. ws, id) end
local idem = redis.call('HGET', KEYS[1], 'idem')
if idem and redis.call('HGET', idem, 'task') == id then redis.call('DEL', idem) end
redis.call('DEL', ARGV[1] .. 'webhook:' .. id)
redis.call('ZREM', KEYS[2], id)
redis.call('DEL', KEYS[1])
return {'ok'}
"""
