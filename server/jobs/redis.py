"""`redis://`: records in Redis hashes, fair per-tenant queues, claimed jobs in a Redis Stream.

Layout (every key under `prefix`, default `paddock:`; scripts in `redis_scripts.py`):

    {p}task:{id}          hash   json (the record's immutable part), status, attempt, tenant, entry
                                 (current stream entry id), lost (attempts whose worker died), and
                                 the mutable record fields; PEXPIREAT submit_time + ttl (HSET keeps
                                 an existing TTL, so updates never extend it).
    {p}tenant:{tenant}    zset   task ids by submit_time: the list index, trimmed to the TTL window;
    {p}tenant:{tenant}:status:{status}, ...:model:{model}, ...:ws:{workspace}
                          zset   the same for each status, model and workspace: a filtered page is a
                                 ZREVRANGEBYSCORE ... LIMIT over one index or their intersection.
    {p}pending:{tenant}   list   PENDING task ids, oldest first (release pushes to the front).
    {p}rotation           zset   tenants with pending ids, by when they were last served.
    {p}seq                string the served counter behind the rotation's scores.
    {p}quota:{tenant}     hash   running = the tenant's running cap (written by each submit).
    {p}running:{tenant}   zset   the tenant's claimed task ids, scored by record expiry (ms).
    {p}bucket:{tenant}    hash   the submit-rate token bucket.
    {p}wake               list   one token per newly claimable job; idle workers BLPOP it.
    {p}jobs               stream claimed jobs only (`task_id`, `tenant`); MAXLEN ~ stream_maxlen.
    {p}workers            consumer group on {p}jobs; its PEL is the set of claimed jobs.
    {p}dead               stream poison jobs' ids; MAXLEN ~ DEAD_MAXLEN.
    {p}failures           stream `code`, `model` of every task that became FAILED (the operators'
                                 view); MAXLEN ~ FAILURES_MAXLEN.
    {p}idem:{tenant}:{sha256 of the key}
                          hash   task, fp: an Idempotency-Key bound to its task (idempotency.py);
                                 the task's hash names it in `idem`, so deleting the task frees it.
    {p}webhooks, {p}webhook:{id}, {p}webhooks:dead
                                 the webhook outbox (redis_outbox.py), filled by `set_status`.

Fairness: the claim script walks the rotation in order (least recently served first), skips a
tenant at its running cap, pops the first tenant's oldest id, XADDs it and XREADGROUPs it to the
claiming consumer in the same script. A tenant with 1,000 pending jobs therefore gets one job per
turn, like every other tenant with work. Reclaim: the janitor (`janitor.py`) runs XAUTOCLAIM
with min-idle = claim timeout; heartbeats (XCLAIM JUSTID) keep live claims below it.

Why the mutable fields live beside the JSON instead of inside it: the Lua scripts that fence
writes would otherwise have to cjson.decode/encode the record, and Redis's cjson prints numbers
with 14 significant digits and turns empty arrays into `{}`. Here Lua only copies strings that
Python formatted (repr of floats round-trips exactly) and Python merges them on read.

Nothing grows without bound: hashes and index zsets expire with the TTL, lists and quota/running
keys are re-expired on every write, acked entries are XDELed, and both streams are MAXLEN-trimmed.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from enum import Enum
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.jobs import redis_scripts as scripts
from server.jobs.base import (
    POISON_CODE,
    POISON_MESSAGE,
    Claim,
    DuplicateTask,
    Limits,
    QueueObserver,
    QuotaExceeded,
    TaskFilter,
)
from server.jobs.idempotency import IdempotencyKey, IdempotencyMismatch
from server.jobs.janitor import Janitor
from server.jobs.job import TaskRecord, TaskStatus
from server.jobs.memory import DEFAULT_CLAIM_TIMEOUT_S, DEFAULT_MAX_ATTEMPTS, matches, page_of
from server.jobs.redis_outbox import DUE_KEY, RedisOutbox

log = logging.getLogger(__name__)

# -- key names and limits ------------------------------------------------------------------------
DEFAULT_PREFIX = "paddock:"
TASK_KEY = "{p}task:{task_id}"
STREAM_KEY = "{p}jobs"
GROUP_NAME = "{p}workers"
TENANT_KEY = "{p}tenant:{tenant}"
STATUS_INDEX = "{p}tenant:{tenant}:status:{status}"
MODEL_INDEX = "{p}tenant:{tenant}:model:{model}"
WORKSPACE_INDEX = "{p}tenant:{tenant}:ws:{workspace}"
LIST_SCRATCH = "{p}tenant:{tenant}:scratch"
PENDING_KEY = "{p}pending:{tenant}"
QUOTA_KEY = "{p}quota:{tenant}"
BUCKET_KEY = "{p}bucket:{tenant}"
ROTATION_KEY = "{p}rotation"
SEQ_KEY = "{p}seq"
WAKE_KEY = "{p}wake"
DEAD_KEY = "{p}dead"
PRESENCE_KEY = "{p}presence"  # hash: worker -> {"until": epoch s, "models": [...]}
FAILURES_KEY = "{p}failures"
IDEMPOTENCY_KEY = "{p}idem:{tenant}:{digest}"
FAILURES_MAXLEN = 10_000
STREAM_FIELD = "task_id"
DEAD_MAXLEN = 10_000
SCAN_TENANTS = 1_000  # tenants one claim looks at (all of them, in practice)
RECLAIM_SCAN = 100  # timed-out entries one reclaim looks through (skipped or poison ones)
# Every blocking call (BLPOP) must stay well under the client's socket timeout, or redis-py raises
# TimeoutError mid-block (redis-py 8 defaults socket_timeout to 5 s).
BLOCK_MAX_S = 2.0
SOCKET_TIMEOUT_S = 10.0
# Retries of a command whose connection dropped: 0.1 + 0.2 + 0.4 + 0.8 + 1 + 1 + ... ≈ 8 s.
RETRIES = 10
RETRY_BUDGET_S = 8.0

# Record fields that change after submit: kept as separate hash fields (see module docstring).
_MUTABLE = (
    "status",
    "attempt",
    "scheduled_time",
    "end_time",
    "orig_prompt",
    "result_key",
    "code",
    "message",
    "progress_step",
    "progress_total",
)
_FLOATS = frozenset({"scheduled_time", "end_time"})
_INTS = frozenset({"attempt", "progress_step", "progress_total"})


def _encode(name: str, value: Any) -> str:
    if name in _FLOATS:
        return repr(float(value))
    return str(value.value if isinstance(value, Enum) else value)


def _decode(name: str, raw: str | None) -> Any:
    if raw is None:
        return None
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
    """`TaskQueue` on Redis: hashes for records, per-tenant lists, a Stream + group for claims.

    Every state change is one Lua script, so cancel/claim and fenced commits are atomic on the
    server; any number of facades and workers can share one Redis (`noeviction`, `appendonly`).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_s: int,
        stream_maxlen: int = 100_000,
        prefix: str = DEFAULT_PREFIX,
        claim_timeout_s: float = DEFAULT_CLAIM_TIMEOUT_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        observer: QueueObserver | None = None,
    ) -> None:
        self._redis = client
        self._observer = observer
        self._ttl_s = ttl_s
        self._maxlen = stream_maxlen
        self._prefix = prefix
        self._max_attempts = max(1, max_attempts)
        self._janitor = Janitor(claim_timeout_s)
        self._stream = STREAM_KEY.format(p=prefix)
        self._group = GROUP_NAME.format(p=prefix)
        self._group_ready = False
        self._scripts = {
            name: client.register_script(getattr(scripts, name))
            for name in ("SUBMIT", "CLAIM", "RECLAIM", "CANCEL", "FENCED", "DEPTH", "LIST", "DELETE")
        }
        self.webhooks = RedisOutbox(client, prefix)

    @classmethod
    def from_url(cls, url: str, *, retries: int = RETRIES, **kwargs: Any) -> RedisTaskQueue:
        """Connect lazily to `url` (redis://, rediss://, unix://); `kwargs` go to `__init__`.

        Commands that hit a dropped connection are retried with exponential backoff (about
        `RETRY_BUDGET_S` in all) before the error reaches the caller, so a Redis restart or
        failover is ridden out; past that, callers see ConnectionError (the facade answers 500)."""
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=5.0,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        return cls(client, **kwargs)

    def _key(self, template: str, **parts: str) -> str:
        return template.format(p=self._prefix, **parts)

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        return list(await self._scripts[name](keys=keys, args=[self._prefix, *args]))

    async def _ensure_group(self, *, force: bool = False) -> None:
        if self._group_ready and not force:
            return
        try:
            # From id 0, not $: entries added before the group existed must still be delivered.
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # -- facade side -------------------------------------------------------------------------
    async def submit(
        self, record: TaskRecord, *, limits: Limits | None = None, idempotency: IdempotencyKey | None = None
    ) -> str:
        """Store `record`, queue its id on its tenant's list and join the rotation, in one script
        that also checks and binds `idempotency`. Returns the id of the task the submit stands for.

        Raises `DuplicateTask` if the id exists, `QuotaExceeded` if `limits` refuse it,
        `IdempotencyMismatch` if the key is bound to a different request."""
        limits = limits or Limits()
        now = time.time()
        tenant = record.tenant
        keys = [
            self._key(TASK_KEY, task_id=record.task_id),
            self._key(TENANT_KEY, tenant=tenant),
            self._key(PENDING_KEY, tenant=tenant),
            self._key(ROTATION_KEY),
            self._key(BUCKET_KEY, tenant=tenant),
            self._key(QUOTA_KEY, tenant=tenant),
            self._key(SEQ_KEY),
            self._key(MODEL_INDEX, tenant=tenant, model=record.model),
        ]
        if record.workspace is not None:
            keys.append(self._key(WORKSPACE_INDEX, tenant=tenant, workspace=record.workspace))
        mutable = {name: getattr(record, name) for name in _MUTABLE}
        idem: list[str | int] = ["", "", 0]
        if idempotency is not None:
            name = self._key(IDEMPOTENCY_KEY, tenant=tenant, digest=idempotency.digest)
            idem = [name, idempotency.fingerprint, idempotency.ttl_s * 1000]
        webhook = ["webhook", record.webhook_url] if record.webhook_url else []
        args = [
            record.task_id,
            int((record.submit_time + self._ttl_s) * 1000),
            repr(record.submit_time),
            repr(now - self._ttl_s),
            int(now * 1000),
            tenant,
            *(_opt(v) for v in (limits.submit_per_s, limits.running, limits.pending, limits.queue_depth)),
            self._ttl_s * 1000,
            _frozen_json(record),
            *idem,
            "tenant",
            tenant,
            *webhook,
            *_fields(**mutable),
        ]
        reply = await self._run("SUBMIT", keys, args)
        tag = reply[0]
        if tag == "existing":
            return str(reply[1])
        if tag == "conflict":
            raise IdempotencyMismatch(str(reply[1]))
        if tag == "duplicate":
            raise DuplicateTask(record.task_id)
        if tag != "ok":
            raise QuotaExceeded(tag)
        return record.task_id

    async def idempotent_task(self, tenant: str, key: IdempotencyKey) -> tuple[str, str] | None:
        """The (task id, fingerprint) `key` is bound to for `tenant`, or None."""
        name = self._key(IDEMPOTENCY_KEY, tenant=tenant, digest=key.digest)
        task_id, fingerprint = cast("list[str | None]", await self._redis.hmget(name, ["task", "fp"]))
        if task_id is None or not await self._redis.exists(self._key(TASK_KEY, task_id=task_id)):
            return None
        return task_id, str(fingerprint)

    async def delete(self, task_id: str) -> bool:
        """Remove a final record with its index entries, idempotency key and waiting delivery."""
        keys = [self._key(TASK_KEY, task_id=task_id), self._key(DUE_KEY)]
        return bool((await self._run("DELETE", keys, [task_id]))[0] == "ok")

    async def get(self, task_id: str) -> TaskRecord | None:
        """The record, or None when unknown or expired."""
        row = await self._redis.hgetall(self._key(TASK_KEY, task_id=task_id))
        return _to_record(cast(dict[str, str], row))  # decode_responses=True: str keys and values

    async def list_tasks(
        self, tenant: str, filters: TaskFilter, page_no: int, page_size: int, *, oldest_first: bool = False
    ) -> tuple[list[TaskRecord], int]:
        """One page of `tenant`'s matching records, newest first (or oldest first), and the total
        count: read from the indexes, then only the page's records are fetched."""
        if filters.task_id is not None:
            record = await self.get(filters.task_id)
            mine = record is not None and record.tenant == tenant and matches(record, filters)
            found = [record] if mine and record is not None else []
            return page_of(found, page_no, page_size), len(found)
        keys = [self._key(TENANT_KEY, tenant=tenant)]
        if filters.status is not None:
            keys.append(self._key(STATUS_INDEX, tenant=tenant, status=filters.status.value))
        if filters.model is not None:
            keys.append(self._key(MODEL_INDEX, tenant=tenant, model=filters.model))
        if filters.workspace is not None:
            keys.append(self._key(WORKSPACE_INDEX, tenant=tenant, workspace=filters.workspace))
        # Entries of records past their TTL may linger until the next submit trims them.
        low = max(filters.start_time, time.time() - self._ttl_s)
        offset = (page_no - 1) * page_size
        floor = f"({low!r}" if low > filters.start_time else repr(low)
        args = [floor, repr(filters.end_time), offset, page_size, "asc" if oldest_first else "desc"]
        total, ids = await self._run("LIST", [*keys, self._key(LIST_SCRATCH, tenant=tenant)], args)
        if not ids:
            return [], int(total)
        pipe = self._redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hgetall(self._key(TASK_KEY, task_id=task_id))
        records = [r for r in map(_to_record, await pipe.execute()) if r is not None and r.tenant == tenant]
        return records, int(total)

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """PENDING → CANCELED, removing the id from its tenant's list; None if not PENDING."""
        reply = await self._run(
            "CANCEL", [self._key(TASK_KEY, task_id=task_id)], [repr(time.time()), task_id]
        )
        return _to_record(reply[1:]) if reply[0] == "ok" else None

    async def depth(self) -> int:
        """Jobs waiting to be claimed: the tenants' pending lists together."""
        return int(await self._scripts["DEPTH"](keys=[self._key(ROTATION_KEY)], args=[self._prefix]))

    async def dead_letters(self, count: int = 100) -> list[str]:
        """Ids of the most recent poison jobs, newest first."""
        rows = cast(
            list[tuple[str, dict[str, str]]], await self._redis.xrevrange(self._key(DEAD_KEY), count=count)
        )
        return [fields.get(STREAM_FIELD, "") for _id, fields in rows]

    # -- worker side -------------------------------------------------------------------------
    async def claim(self, consumer: str, timeout_s: float) -> Claim | None:
        """Reclaim a timed-out job or take the next fair one; wait for a wake-up token between
        tries (BLPOP of at most BLOCK_MAX_S, well below the socket timeout) until `timeout_s`."""
        await self._ensure_group()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        first_pass = True
        while True:
            found = await self._claim_once(consumer, first_pass=first_pass)
            remaining = deadline - time.monotonic()
            if found is not None or remaining <= 0:
                return found
            first_pass = False
            # BLPOP 0 would wait forever: never pass less than 10 ms. Waking at least every
            # janitor interval keeps the sweep for dead workers' claims going while idle.
            wait_s = min(remaining, BLOCK_MAX_S, self._janitor.interval_s)
            await self._redis.blpop([self._key(WAKE_KEY)], timeout=max(wait_s, 0.01))

    async def _claim_once(self, consumer: str, *, first_pass: bool) -> Claim | None:
        if self._janitor.due(first_pass=first_pass):
            found = await self.reclaim(consumer)
            self._janitor.swept(found is not None)
            if found is not None:
                return found
        reply = await self._group_script(
            "CLAIM",
            [self._stream, self._key(ROTATION_KEY), self._key(SEQ_KEY)],
            [self._group, consumer, repr(time.time()), int(time.time() * 1000), self._maxlen, SCAN_TENANTS],
        )
        return self._to_claim(reply, consumer)

    async def reclaim(self, consumer: str) -> Claim | None:
        """XAUTOCLAIM one entry idle for the claim timeout; start its next attempt, or fail it as a
        poison job (and look further)."""
        await self._ensure_group()
        min_idle_ms = int(self._janitor.claim_timeout_s * 1000)
        message = POISON_MESSAGE.replace("{lost}", "%d")
        keys = [self._stream, self._key(DEAD_KEY)]
        for _ in range(RECLAIM_SCAN):
            now = repr(time.time())
            args = [self._group, consumer, min_idle_ms, now, self._max_attempts, DEAD_MAXLEN]
            reply = await self._group_script("RECLAIM", keys, [*args, self._ttl_s * 1000, message])
            if reply[0] == "poison":
                log.warning("poison job failed", extra={"task_id": reply[1]})
                if self._observer is not None:
                    self._observer.job_dead_lettered()
                poisoned = await self.get(reply[1])
                await self._log_failure(poisoned.model if poisoned else "", POISON_CODE)
            if reply[0] not in ("skip", "poison"):
                claim = self._to_claim(reply, consumer)
                if claim is not None and self._observer is not None:
                    self._observer.job_retried()
                return claim
        return None

    async def _group_script(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        """Run a claim-side script; recreate the group once if it is gone (FLUSHDB, operator)."""
        reply = await self._run(name, keys, args)
        if reply[0] == "nogroup":
            await self._ensure_group(force=True)
            reply = await self._run(name, keys, args)
        return reply

    @staticmethod
    def _to_claim(reply: list[Any], consumer: str) -> Claim | None:
        if reply[0] != "claim":
            return None
        row = dict(zip(reply[1::2], reply[2::2], strict=True))
        record = _to_record(row)
        if record is None:
            return None
        return Claim(record.task_id, record.attempt, row["entry"], consumer, record)

    async def _write(self, claim: Claim, mode: str, **values: Any) -> bool:
        keys = [self._key(TASK_KEY, task_id=claim.task_id), self._stream, self._key(ROTATION_KEY)]
        args = [claim.attempt, mode, self._group, claim.entry_id, claim.consumer, claim.task_id]
        reply = await self._run("FENCED", keys, [*args, self._ttl_s * 1000, *_fields(**values)])
        return bool(reply[0] == "ok")

    async def heartbeat(self, claim: Claim) -> bool:
        """Reset the entry's idle time (XCLAIM JUSTID) while the claim is current."""
        return await self._write(claim, "heartbeat")

    async def progress(self, claim: Claim, step: int, total: int) -> bool:
        """Store denoising progress, fenced by attempt."""
        return await self._write(claim, "set", progress_step=step, progress_total=total)

    async def complete(self, claim: Claim, *, result_key: str, orig_prompt: str) -> bool:
        """RUNNING → SUCCEEDED (fenced), then XACK + XDEL the entry and free the running slot."""
        return await self._write(
            claim,
            "final",
            status=TaskStatus.SUCCEEDED,
            end_time=time.time(),
            result_key=result_key,
            orig_prompt=orig_prompt,
        )

    async def fail(self, claim: Claim, *, code: str, message: str) -> bool:
        """RUNNING → FAILED (fenced), then XACK + XDEL the entry and free the running slot."""
        failed = await self._write(
            claim, "final", status=TaskStatus.FAILED, end_time=time.time(), code=code, message=message
        )
        if failed:
            await self._log_failure(claim.record.model, code)
        return failed

    async def release(self, claim: Claim) -> None:
        """RUNNING → PENDING (fenced): ack the entry, put the id at the front of its tenant's list
        and the tenant at the front of the rotation, so the next claim anywhere takes it."""
        await self._write(claim, "release", status=TaskStatus.PENDING)

    # -- worker presence -----------------------------------------------------------------------
    async def announce(self, worker: str, models: Sequence[str], ttl_s: float) -> None:
        """One hash field per worker; Redis 7.0 has no per-field TTL, so readers prune."""
        body = json.dumps({"until": time.time() + ttl_s, "models": sorted(models)})
        await self._redis.hset(self._key(PRESENCE_KEY), worker, body)

    async def served_models(self) -> set[str]:
        """Models of workers whose announcement has not run out."""
        return {model for models in (await self.workers()).values() for model in models}

    # -- the operators' view -------------------------------------------------------------------
    async def workers(self) -> dict[str, frozenset[str]]:
        """Workers whose announcement has not run out, and their models; stale fields are removed."""
        key = self._key(PRESENCE_KEY)
        now = time.time()
        live: dict[str, frozenset[str]] = {}
        stale = []
        presence = cast("dict[str, str]", await self._redis.hgetall(key))
        for worker, raw in presence.items():
            entry = json.loads(raw)
            if entry["until"] > now:
                live[worker] = frozenset(entry["models"])
            else:
                stale.append(worker)
        if stale:
            await self._redis.hdel(key, *stale)
        return live

    async def running(self) -> dict[str, int]:
        """Claimed jobs whose record is RUNNING, per model: the stream holds only claimed jobs
        (commits and releases XDEL theirs)."""
        entries = cast("list[tuple[str, dict[str, str]]]", await self._redis.xrange(self._stream))
        task_ids = {fields[STREAM_FIELD] for _id, fields in entries}
        pipe = self._redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hmget(self._key(TASK_KEY, task_id=task_id), "json", "status")
        rows = await pipe.execute() if task_ids else []
        running = (json.loads(frozen)["model"] for frozen, status in rows if frozen and status == "RUNNING")
        return dict(Counter(running))

    async def failures(self, since: float) -> dict[str, int]:
        """Entries of the failures stream from `since` on (entry ids are epoch milliseconds), by code."""
        rows = await self._redis.xrange(self._key(FAILURES_KEY), min=f"{int(since * 1000)}-0")
        return dict(Counter(fields["code"] for _id, fields in cast("list[tuple[str, dict[str, str]]]", rows)))

    async def _log_failure(self, model: str, code: str) -> None:
        # After the fenced commit, not inside it: a worker dying in between leaves one failure
        # uncounted in the operators' view, and nothing else.
        await self._redis.xadd(
            self._key(FAILURES_KEY),
            {"code": code, "model": model},
            maxlen=FAILURES_MAXLEN,
            approximate=True,
        )

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


def _opt(value: float | None) -> str:
    """A limit as a script argument: '' for none (Lua's tonumber('') is nil)."""
    return "" if value is None else repr(value)
