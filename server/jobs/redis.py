"""`redis://`: records in Redis hashes, fair per-tenant queues, claimed jobs in a Redis Stream.

Every key, and how a record is kept in its hash, is in `redis_layout.py`; the Lua scripts that
make each state change atomic are in `redis_scripts.py`.

Fairness: the claim script walks the rotation in order (least recently served first), skips a
tenant at its running cap, pops the first tenant's oldest id, XADDs it and XREADGROUPs it to the
claiming consumer in the same script. A tenant with 1,000 pending jobs therefore gets one job per
turn, like every other tenant with work. Reclaim: the janitor (`janitor.py`) runs XAUTOCLAIM
with min-idle = claim timeout; heartbeats (XCLAIM JUSTID) keep live claims below it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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
from server.jobs.listing import matches, page_of
from server.jobs.memory import DEFAULT_CLAIM_TIMEOUT_S, DEFAULT_MAX_ATTEMPTS
from server.jobs.redis_layout import (
    BLOCK_MAX_S,
    BUCKET_KEY,
    DEAD_KEY,
    DEAD_MAXLEN,
    DEFAULT_PREFIX,
    GROUP_NAME,
    IDEMPOTENCY_KEY,
    LIST_SCRATCH,
    MODEL_INDEX,
    MUTABLE_FIELDS,
    PENDING_KEY,
    QUOTA_KEY,
    RECLAIM_SCAN,
    RETRIES,
    ROTATION_KEY,
    SCAN_TENANTS,
    SEQ_KEY,
    SOCKET_TIMEOUT_S,
    STATUS_INDEX,
    STREAM_FIELD,
    STREAM_KEY,
    TASK_KEY,
    TENANT_KEY,
    WAKE_KEY,
    WORKSPACE_INDEX,
    frozen_json,
    record_fields,
    to_record,
)
from server.jobs.redis_outbox import DUE_KEY, RedisOutbox
from server.jobs.redis_presence import RedisPresence

log = logging.getLogger(__name__)


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
        self._presence = RedisPresence(client, prefix, self._stream)
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
        mutable = {name: getattr(record, name) for name in MUTABLE_FIELDS}
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
            frozen_json(record),
            *idem,
            "tenant",
            tenant,
            *webhook,
            *record_fields(**mutable),
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
        return to_record(cast(dict[str, str], row))  # decode_responses=True: str keys and values

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
        records = [r for r in map(to_record, await pipe.execute()) if r is not None and r.tenant == tenant]
        return records, int(total)

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """PENDING → CANCELED, removing the id from its tenant's list; None if not PENDING."""
        reply = await self._run(
            "CANCEL", [self._key(TASK_KEY, task_id=task_id)], [repr(time.time()), task_id]
        )
        return to_record(reply[1:]) if reply[0] == "ok" else None

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
                await self._presence.log_failure(poisoned.model if poisoned else "", POISON_CODE)
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
        record = to_record(row)
        if record is None:
            return None
        return Claim(record.task_id, record.attempt, row["entry"], consumer, record)

    async def _write(self, claim: Claim, mode: str, **values: Any) -> bool:
        keys = [self._key(TASK_KEY, task_id=claim.task_id), self._stream, self._key(ROTATION_KEY)]
        args = [claim.attempt, mode, self._group, claim.entry_id, claim.consumer, claim.task_id]
        reply = await self._run("FENCED", keys, [*args, self._ttl_s * 1000, *record_fields(**values)])
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
            await self._presence.log_failure(claim.record.model, code)
        return failed

    async def release(self, claim: Claim) -> None:
        """RUNNING → PENDING (fenced): ack the entry, put the id at the front of its tenant's list
        and the tenant at the front of the rotation, so the next claim anywhere takes it."""
        await self._write(claim, "release", status=TaskStatus.PENDING)

    # -- worker presence and the operators' view (redis_presence.py) -------------------------
    async def announce(self, worker: str, models: Sequence[str], ttl_s: float) -> None:
        """Record that `worker` serves `models` for the next `ttl_s` seconds."""
        await self._presence.announce(worker, models, ttl_s)

    async def served_models(self) -> set[str]:
        """Models of workers whose announcement has not run out."""
        return {model for models in (await self._presence.workers()).values() for model in models}

    async def workers(self) -> dict[str, frozenset[str]]:
        """Workers whose announcement has not run out, and their models."""
        return await self._presence.workers()

    async def running(self) -> dict[str, int]:
        """RUNNING jobs per model."""
        return await self._presence.running()

    async def failures(self, since: float) -> dict[str, int]:
        """Tasks that became FAILED at or after `since`, by code."""
        return await self._presence.failures(since)

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
