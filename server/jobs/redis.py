"""`redis://`: records in Redis hashes, jobs in a Redis Stream read by one consumer group.

Layout (every key under `prefix`, default `paddock:`):

    {p}task:{id}        hash   json (the record's immutable part), status, attempt, tenant, entry
                               (current stream entry id), and the mutable record fields;
                               PEXPIREAT submit_time + ttl (HSET keeps an existing TTL, so
                               updates never extend it).
    {p}jobs             stream entries `task_id=<id>`; XADD MAXLEN ~ stream_maxlen.
    {p}workers          consumer group on {p}jobs (created with MKSTREAM, from id 0).
    {p}tenant:{tenant}  zset   task ids scored by submit_time: the list index; trimmed to the
                               TTL window on submit, expires with its newest record.

Why the mutable fields live beside the JSON instead of inside it: the Lua scripts that fence
writes would otherwise have to cjson.decode/encode the record, and Redis's cjson prints numbers
with 14 significant digits and turns empty arrays into `{}`. Here Lua only copies strings that
Python formatted (repr of floats round-trips exactly) and Python merges them on read.

Acknowledged entries are also XDELed, so the stream holds only jobs not yet finished; the
consumer group's pending list (PEL) holds the claimed ones until complete/fail acknowledges them.
"""

from __future__ import annotations

import json
import time
from enum import Enum
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from server.jobs.base import Claim, DuplicateTask, TaskFilter
from server.jobs.job import TaskRecord, TaskStatus
from server.jobs.memory import matches, page_of

# -- key names and limits ------------------------------------------------------------------------
DEFAULT_PREFIX = "paddock:"
TASK_KEY = "{p}task:{task_id}"
STREAM_KEY = "{p}jobs"
GROUP_NAME = "{p}workers"
TENANT_KEY = "{p}tenant:{tenant}"
STREAM_FIELD = "task_id"
# XREADGROUP BLOCK must stay well under the client's socket timeout, or redis-py raises
# TimeoutError mid-block (redis-py 8 defaults socket_timeout to 5 s).
BLOCK_MAX_S = 2.0
SOCKET_TIMEOUT_S = 10.0

# Record fields that change after submit: kept as separate hash fields (see module docstring).
_MUTABLE = (
    "status",
    "attempt",
    "scheduled_time",
    "end_time",
    "orig_prompt",
    "result_key",
    "usage",
    "code",
    "message",
    "progress_step",
    "progress_total",
)
_FLOATS = frozenset({"scheduled_time", "end_time"})
_INTS = frozenset({"attempt", "progress_step", "progress_total"})
_JSONS = frozenset({"usage"})

# -- Lua scripts (each runs atomically: no other command interleaves) ---------------------------
# KEYS: hash, tenant zset, stream. ARGV: task_id, expire_at_ms, score, trim_before, maxlen,
# now_ms, field/value pairs...
_SUBMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local entry = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'task_id', ARGV[1])
redis.call('HSET', KEYS[1], 'entry', entry, unpack(ARGV, 7))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local left = math.max(tonumber(ARGV[2]) - tonumber(ARGV[6]), 1)
if redis.call('PTTL', KEYS[2]) < left then redis.call('PEXPIRE', KEYS[2], left) end
return entry
"""

# KEYS: hash, stream. ARGV: group, entry id, now. Skips (acks and deletes) entries whose record
# expired, is final, or has since been re-queued under another entry; else starts an attempt.
# A RUNNING record is claimable again: that is how a reclaimed (XAUTOCLAIM) job restarts.
_CLAIM = """
local st = redis.call('HGET', KEYS[1], 'status')
if (not st) or st == 'SUCCEEDED' or st == 'FAILED' or st == 'CANCELED'
    or redis.call('HGET', KEYS[1], 'entry') ~= ARGV[2] then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
  return false
end
redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'RUNNING', 'scheduled_time', ARGV[3])
redis.call('HDEL', KEYS[1], 'progress_step', 'progress_total')
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: hash, stream. ARGV: group, now. Only PENDING cancels; its entry is acked and deleted so
# it is never delivered, and a claim that already read it sees CANCELED and skips it.
_CANCEL = """
if redis.call('HGET', KEYS[1], 'status') ~= 'PENDING' then return false end
redis.call('HSET', KEYS[1], 'status', 'CANCELED', 'end_time', ARGV[2])
local entry = redis.call('HGET', KEYS[1], 'entry')
if entry then
  redis.call('XACK', KEYS[2], ARGV[1], entry)
  redis.call('XDEL', KEYS[2], entry)
end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: hash, stream. ARGV: attempt, mode, group, entry id, consumer, task_id, maxlen,
# field/value pairs... Every worker write goes through this fence: the record must be RUNNING
# under this very attempt, so stale attempts and final records are never written.
_FENCED = """
if redis.call('HGET', KEYS[1], 'status') ~= 'RUNNING'
    or redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then
  return 0
end
local mode = ARGV[2]
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
if mode == 'heartbeat' then
  -- min-idle 0 + JUSTID: resets the entry's idle time without bumping its delivery count.
  redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[5], 0, ARGV[4], 'JUSTID')
elseif mode == 'final' or mode == 'release' then
  redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])
  redis.call('XDEL', KEYS[2], ARGV[4])
end
if mode == 'release' then
  redis.call('HDEL', KEYS[1], 'scheduled_time', 'progress_step', 'progress_total')
  local entry = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'task_id', ARGV[6])
  redis.call('HSET', KEYS[1], 'entry', entry)
end
return 1
"""


def _encode(name: str, value: Any) -> str:
    if name in _JSONS:
        return json.dumps(value, separators=(",", ":"))
    if name in _FLOATS:
        return repr(float(value))
    return str(value.value if isinstance(value, Enum) else value)


def _decode(name: str, raw: str | None) -> Any:
    if raw is None:
        return None
    if name in _JSONS:
        return json.loads(raw)
    if name in _FLOATS:
        return float(raw)
    if name in _INTS:
        return int(raw)
    return raw


def _fields(**values: Any) -> list[str]:
    """Flatten non-None record fields into HSET's field/value argument list."""
    return [
        part for name, value in values.items() if value is not None for part in (name, _encode(name, value))
    ]


def _frozen_json(record: TaskRecord) -> str:
    body = json.loads(record.to_json())
    for name in _MUTABLE:
        body.pop(name, None)
    return json.dumps(body, separators=(",", ":"))


def _to_record(row: dict[str, str] | list[str] | None) -> TaskRecord | None:
    """Merge the hash's mutable fields into its JSON; None for a missing (expired) hash."""
    if isinstance(row, list):  # HGETALL returned from Lua: flat [field, value, ...]
        row = dict(zip(row[::2], row[1::2], strict=True))
    if not row or "json" not in row:
        return None
    body = json.loads(row["json"])
    body.update({name: _decode(name, row.get(name)) for name in _MUTABLE})
    return TaskRecord.from_json(json.dumps(body))


class RedisTaskQueue:
    """`TaskQueue` on Redis: hashes for records, a Stream + consumer group for jobs.

    Every state change is one Lua script, so cancel/claim and fenced commits are atomic on the
    server; any number of facades and workers can share one Redis (use `noeviction`).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_s: int,
        stream_maxlen: int = 100_000,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._maxlen = stream_maxlen
        self._prefix = prefix
        self._stream = STREAM_KEY.format(p=prefix)
        self._group = GROUP_NAME.format(p=prefix)
        self._group_ready = False
        self._submit = client.register_script(_SUBMIT)
        self._claim = client.register_script(_CLAIM)
        self._cancel = client.register_script(_CANCEL)
        self._fenced = client.register_script(_FENCED)

    @classmethod
    def from_url(
        cls, url: str, *, ttl_s: int, stream_maxlen: int = 100_000, prefix: str = DEFAULT_PREFIX
    ) -> RedisTaskQueue:
        """Connect lazily to `url` (redis://, rediss://, unix://)."""
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=5.0,
            health_check_interval=30,
        )
        return cls(client, ttl_s=ttl_s, stream_maxlen=stream_maxlen, prefix=prefix)

    def _task_key(self, task_id: str) -> str:
        return TASK_KEY.format(p=self._prefix, task_id=task_id)

    async def _ensure_group(self, *, force: bool = False) -> None:
        if self._group_ready and not force:
            return
        try:
            # From id 0, not $: jobs submitted before any worker started must still be delivered.
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # -- facade side -------------------------------------------------------------------------
    async def submit(self, record: TaskRecord) -> None:
        """Store `record` and XADD its job in one script. Raises `DuplicateTask` if the id exists."""
        await self._ensure_group()
        now = time.time()
        keys = [
            self._task_key(record.task_id),
            TENANT_KEY.format(p=self._prefix, tenant=record.tenant),
            self._stream,
        ]
        mutable = {name: getattr(record, name) for name in _MUTABLE}
        args = [
            record.task_id,
            int((record.submit_time + self._ttl_s) * 1000),
            repr(record.submit_time),
            repr(now - self._ttl_s),
            self._maxlen,
            int(now * 1000),
            "json",
            _frozen_json(record),
            "tenant",
            record.tenant,
            *_fields(**mutable),
        ]
        if await self._submit(keys=keys, args=args) is None:
            raise DuplicateTask(record.task_id)

    async def get(self, task_id: str) -> TaskRecord | None:
        """The record, or None when unknown or expired."""
        return _to_record(await self._redis.hgetall(self._task_key(task_id)))

    async def list(
        self, tenant: str, filters: TaskFilter, page_no: int, page_size: int
    ) -> tuple[list[TaskRecord], int]:
        """One page of `tenant`'s matching records, newest first, and the total count."""
        ids = await self._redis.zrevrangebyscore(
            TENANT_KEY.format(p=self._prefix, tenant=tenant), filters.end_time, filters.start_time
        )
        if filters.task_id is not None:
            ids = [i for i in ids if i == filters.task_id]
        pipe = self._redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hgetall(self._task_key(task_id))
        rows = await pipe.execute() if ids else []
        found = [
            r for r in map(_to_record, rows) if r is not None and r.tenant == tenant and matches(r, filters)
        ]
        return page_of(found, page_no, page_size), len(found)

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """PENDING → CANCELED, removing the job from the stream; None if not PENDING."""
        row = await self._cancel(
            keys=[self._task_key(task_id), self._stream], args=[self._group, repr(time.time())]
        )
        return _to_record(row)

    async def depth(self) -> int:
        """Entries not yet delivered to the group: XLEN minus the group's pending count.

        Exact because every acknowledged or canceled entry is also XDELed, so the stream holds
        only waiting and pending entries. XINFO GROUPS `lag` (Redis 7) is not used: it counts
        entries_added - entries_read and so still includes canceled (deleted) entries."""
        await self._ensure_group()
        try:
            groups = await self._redis.xinfo_groups(self._stream)
        except ResponseError:  # the stream key is gone (FLUSHDB, operator): nothing waits
            await self._ensure_group(force=True)
            return 0
        pending = next((int(g["pending"]) for g in groups if g["name"] == self._group), 0)
        return max(int(await self._redis.xlen(self._stream)) - pending, 0)

    # -- worker side -------------------------------------------------------------------------
    async def claim(self, consumer: str, timeout_s: float) -> Claim | None:
        """XREADGROUP in blocks of at most BLOCK_MAX_S until `timeout_s`; start the first live job."""
        await self._ensure_group()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            remaining = deadline - time.monotonic()
            # BLOCK 0 would wait forever: past the deadline, read without BLOCK.
            block_ms = max(int(min(remaining, BLOCK_MAX_S) * 1000), 1) if remaining > 0 else None
            entries = await self._read(consumer, block_ms)
            for entry_id, fields in entries:
                found = await self._claim_entry(consumer, entry_id, fields.get(STREAM_FIELD, ""))
                if found is not None:
                    return found
            if not entries and remaining <= 0:
                return None

    async def _read(self, consumer: str, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        try:
            reply = await self._redis.xreadgroup(
                self._group, consumer, {self._stream: ">"}, count=1, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):  # the stream was deleted (FLUSHDB, operator): recreate
                raise
            await self._ensure_group(force=True)
            return []
        return [entry for _stream, entries in reply or [] for entry in entries]

    async def _claim_entry(self, consumer: str, entry_id: str, task_id: str) -> Claim | None:
        """Start an attempt on a delivered entry (also the path for entries reclaimed later)."""
        row = await self._claim(
            keys=[self._task_key(task_id), self._stream], args=[self._group, entry_id, repr(time.time())]
        )
        record = _to_record(row)
        if record is None:
            return None
        return Claim(
            task_id=task_id, attempt=record.attempt, entry_id=entry_id, consumer=consumer, record=record
        )

    async def _write(self, claim: Claim, mode: str, **values: Any) -> bool:
        args = [
            claim.attempt,
            mode,
            self._group,
            claim.entry_id,
            claim.consumer,
            claim.task_id,
            self._maxlen,
            *_fields(**values),
        ]
        return bool(await self._fenced(keys=[self._task_key(claim.task_id), self._stream], args=args))

    async def heartbeat(self, claim: Claim) -> bool:
        """Reset the entry's idle time (XCLAIM JUSTID) while the claim is current."""
        return await self._write(claim, "heartbeat")

    async def progress(self, claim: Claim, step: int, total: int) -> bool:
        """Store denoising progress, fenced by attempt."""
        return await self._write(claim, "set", progress_step=step, progress_total=total)

    async def complete(
        self, claim: Claim, *, result_key: str, usage: dict[str, Any], orig_prompt: str
    ) -> bool:
        """RUNNING → SUCCEEDED (fenced), then XACK + XDEL the entry."""
        return await self._write(
            claim,
            "final",
            status=TaskStatus.SUCCEEDED,
            end_time=time.time(),
            result_key=result_key,
            usage=usage,
            orig_prompt=orig_prompt,
        )

    async def fail(self, claim: Claim, *, code: str, message: str) -> bool:
        """RUNNING → FAILED (fenced), then XACK + XDEL the entry."""
        return await self._write(
            claim, "final", status=TaskStatus.FAILED, end_time=time.time(), code=code, message=message
        )

    async def release(self, claim: Claim) -> None:
        """RUNNING → PENDING (fenced) and re-queue under a new entry at the stream's tail."""
        await self._write(claim, "release", status=TaskStatus.PENDING)

    # -- lifecycle ---------------------------------------------------------------------------
    async def ping(self) -> bool:
        """True when Redis answers PING."""
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
