"""`memory://`: the task store and job queue inside one process (asyncio).

For `paddock serve` (facade and worker share the process) and unit tests. Nothing survives a
restart. Every method runs on one event loop, so a check-then-set with no `await` between is
atomic: that is what makes `cancel` and `claim` mutually exclusive here. Fairness, quotas,
reclaim and poison jobs follow the Redis backend's rules (see `redis.py`), so one contract suite
covers both.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
from server.jobs.idempotency import IdempotencyKey, IdempotencyMismatch, IdempotencyTable
from server.jobs.janitor import Janitor
from server.jobs.job import TaskRecord, TaskStatus, check_transition
from server.jobs.listing import TimeIndex, matches, page_of
from server.jobs.outbox import Delivery, MemoryOutbox

log = logging.getLogger(__name__)

DEFAULT_CLAIM_TIMEOUT_S = 60.0
DEFAULT_MAX_ATTEMPTS = 3
DEAD_LETTERS_KEPT = 10_000


def _move(record: TaskRecord, status: TaskStatus) -> None:
    """Change `record`'s status, refusing any change `job.TRANSITIONS` does not list."""
    check_transition(record.status, status)
    record.status = status


@dataclass
class _Held:
    """A claimed, unacknowledged job (a stream PEL entry's counterpart)."""

    task_id: str
    tenant: str
    consumer: str
    beat_at: float  # monotonic time of the claim or the last heartbeat


class MemoryTaskQueue:
    """In-process `TaskQueue`: records in a dict, per-tenant FIFOs picked round robin.

    `ttl_s` counts from each record's `submit_time`; expired records are dropped lazily (on
    access and on `list`). A claimed job stays in `_held` from `claim` until `complete`/`fail`,
    mirroring a stream consumer group's pending list, so a claim that stops heartbeating for
    `claim_timeout_s` is reclaimed exactly as on Redis.
    """

    def __init__(
        self,
        *,
        ttl_s: int,
        claim_timeout_s: float = DEFAULT_CLAIM_TIMEOUT_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        observer: QueueObserver | None = None,
    ) -> None:
        self._ttl_s = ttl_s
        self._observer = observer
        self._janitor = Janitor(claim_timeout_s)
        self._max_attempts = max(1, max_attempts)
        self._records: dict[str, TaskRecord] = {}
        self._index = TimeIndex()  # what makes a page cost a page
        self._lost: dict[str, int] = {}
        self._pending: dict[str, deque[str]] = {}  # tenant -> waiting task ids, oldest first
        self._rotation: dict[str, float] = {}  # tenant with waiting ids -> rotation score
        self._seq = 0
        self._caps: dict[str, int] = {}  # tenant -> running cap
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)
        self._running: dict[str, set[str]] = {}  # tenant -> claimed task ids
        self._held: dict[str, _Held] = {}  # entry id -> claimed job
        self._dead: deque[str] = deque(maxlen=DEAD_LETTERS_KEPT)
        self._presence: dict[str, tuple[float, frozenset[str]]] = {}
        self._ids = itertools.count(1)
        self._wakeup: asyncio.Condition | None = None
        self._idempotency = IdempotencyTable()
        self.webhooks = MemoryOutbox()

    # -- helpers ----------------------------------------------------------------------------
    def _cond(self) -> asyncio.Condition:
        # Created lazily so the queue can be built outside a running loop.
        if self._wakeup is None:
            self._wakeup = asyncio.Condition()
        return self._wakeup

    def _expired(self, record: TaskRecord, now: float) -> bool:
        return now >= record.submit_time + self._ttl_s

    def _live(self, task_id: str) -> TaskRecord | None:
        record = self._records.get(task_id)
        if record is not None and self._expired(record, time.time()):
            self._drop(task_id)
            return None
        return record

    def _drop(self, task_id: str) -> None:
        record = self._records.pop(task_id, None)
        self._lost.pop(task_id, None)
        if record is not None:
            self._running.get(record.tenant, set()).discard(task_id)
            self._index.remove(record.tenant, record.submit_time, task_id)
        for entry in [e for e, held in self._held.items() if held.task_id == task_id]:
            del self._held[entry]

    async def _notify(self) -> None:
        cond = self._cond()
        async with cond:
            cond.notify_all()

    def _finalized(self, record: TaskRecord) -> None:
        """Queue the webhook of a record that just became final, in the same step (no await)."""
        if record.webhook_url:
            delivery = Delivery(record.task_id, record.tenant, record.webhook_url, record.status.value)
            self.webhooks.add(delivery)

    def _fenced(self, claim: Claim) -> TaskRecord | None:
        """The record if `claim` is still the current attempt of a RUNNING task, else None."""
        record = self._live(claim.task_id)
        if record is None or record.status != TaskStatus.RUNNING or record.attempt != claim.attempt:
            return None
        return record

    def _ack(self, claim: Claim) -> None:
        self._held.pop(claim.entry_id, None)
        self._running.get(claim.record.tenant, set()).discard(claim.task_id)

    def _admit(self, record: TaskRecord, limits: Limits) -> None:
        """Raise `QuotaExceeded` when `limits` refuse `record`; spend a rate token otherwise."""
        waiting = self._pending.get(record.tenant, ())
        if limits.queue_depth is not None and self._depth() >= limits.queue_depth:
            raise QuotaExceeded("depth")
        if limits.pending is not None and len(waiting) >= limits.pending:
            raise QuotaExceeded("pending")
        if limits.submit_per_s is not None:
            rate = limits.submit_per_s
            cap, now = max(1.0, rate), time.monotonic()
            tokens, at = self._buckets.get(record.tenant, (cap, now))
            tokens = min(cap, tokens + (now - at) * rate)
            if tokens < 1:
                raise QuotaExceeded("rate")
            self._buckets[record.tenant] = (tokens - 1, now)

    def _depth(self) -> int:
        return sum(len(ids) for ids in self._pending.values())

    def _start(self, record: TaskRecord, entry: str, consumer: str) -> Claim:
        record.attempt += 1
        _move(record, TaskStatus.RUNNING)
        record.scheduled_time = time.time()
        record.progress_step = record.progress_total = None
        self._held[entry] = _Held(record.task_id, record.tenant, consumer, time.monotonic())
        return Claim(record.task_id, record.attempt, entry, consumer, copy.deepcopy(record))

    def _next_tenant_id(self) -> tuple[str, str] | None:
        """Round robin: the least recently served tenant below its running cap, and its oldest
        PENDING id (ids of canceled or expired tasks are dropped on the way)."""
        for tenant in sorted(self._rotation, key=lambda t: (self._rotation[t], t)):
            waiting = self._pending.get(tenant, deque())
            cap = self._caps.get(tenant)
            if cap is None or len(self._running.get(tenant, ())) < cap:
                while waiting:
                    task_id = waiting.popleft()
                    record = self._live(task_id)
                    if record is not None and record.status == TaskStatus.PENDING:
                        self._seq += 1
                        self._rotation[tenant] = self._seq
                        return tenant, task_id
            if not waiting:
                del self._rotation[tenant]
                self._pending.pop(tenant, None)
        return None

    def _take(self, consumer: str) -> Claim | None:
        picked = self._next_tenant_id()
        if picked is None:
            return None
        tenant, task_id = picked
        if not self._pending.get(tenant):
            self._rotation.pop(tenant, None)
        self._running.setdefault(tenant, set()).add(task_id)
        return self._start(self._records[task_id], f"{next(self._ids)}-0", consumer)

    def _reclaim_one(self, consumer: str) -> Claim | None:
        """The memory side of XAUTOCLAIM: the oldest claim idle for the claim timeout."""
        limit = time.monotonic() - self._janitor.claim_timeout_s
        for entry, held in list(self._held.items()):
            if held.beat_at > limit:
                continue
            record = self._live(held.task_id)
            if record is None or record.status != TaskStatus.RUNNING:
                self._held.pop(entry, None)
                continue
            lost = self._lost[held.task_id] = self._lost.get(held.task_id, 0) + 1
            if lost < self._max_attempts:
                if self._observer is not None:
                    self._observer.job_retried()
                return self._start(record, entry, consumer)
            self._poison(record, entry, lost)
            if self._observer is not None:
                self._observer.job_dead_lettered()
        return None

    def _poison(self, record: TaskRecord, entry: str, lost: int) -> None:
        _move(record, TaskStatus.FAILED)
        record.end_time = time.time()
        record.code, record.message = POISON_CODE, POISON_MESSAGE.format(lost=lost)
        self._held.pop(entry, None)
        self._running.get(record.tenant, set()).discard(record.task_id)
        self._dead.appendleft(record.task_id)
        self._finalized(record)
        log.warning("poison job failed", extra={"task_id": record.task_id})

    def _claim_once(self, consumer: str, *, first_pass: bool) -> Claim | None:
        if self._janitor.due(first_pass=first_pass):
            found = self._reclaim_one(consumer)
            self._janitor.swept(found is not None)
            if found is not None:
                return found
        return self._take(consumer)

    # -- TaskQueue --------------------------------------------------------------------------
    async def submit(
        self, record: TaskRecord, *, limits: Limits | None = None, idempotency: IdempotencyKey | None = None
    ) -> str:
        """Store `record` and queue its id on its tenant's FIFO; returns the id of the task the
        submit stands for (another one when `idempotency` replays). Raises `DuplicateTask` if the
        id is live, `QuotaExceeded` if `limits` refuse it, `IdempotencyMismatch` if the key is
        bound to a different request."""
        limits = limits or Limits()
        if idempotency is not None and (bound := self._bound(record.tenant, idempotency)):
            if bound[1] != idempotency.fingerprint:
                raise IdempotencyMismatch(bound[0])
            return bound[0]
        if self._live(record.task_id) is not None:
            raise DuplicateTask(record.task_id)
        self._admit(record, limits)
        tenant = record.tenant
        if limits.running is None:
            self._caps.pop(tenant, None)
        else:
            self._caps[tenant] = limits.running
        self._purge_expired(time.time())
        self._records[record.task_id] = copy.deepcopy(record)
        self._index.add(tenant, record.submit_time, record.task_id)
        self._pending.setdefault(tenant, deque()).append(record.task_id)
        # Joins just before the most recently served tenant (see redis_scripts.SUBMIT).
        self._rotation.setdefault(tenant, self._seq - 0.5)
        if idempotency is not None:
            expires_at = record.submit_time + self._ttl_s
            self._idempotency.bind(tenant, idempotency, record.task_id, expires_at=expires_at)
        await self._notify()
        return record.task_id

    async def idempotent_task(self, tenant: str, key: IdempotencyKey) -> tuple[str, str] | None:
        """The (task id, fingerprint) `key` is bound to for `tenant`, or None."""
        return self._bound(tenant, key)

    def _bound(self, tenant: str, key: IdempotencyKey) -> tuple[str, str] | None:
        bound = self._idempotency.bound(tenant, key)
        return bound if bound is not None and self._live(bound[0]) is not None else None

    async def delete(self, task_id: str) -> bool:
        """Remove a final record, its idempotency key and any delivery still waiting."""
        record = self._live(task_id)
        if record is None or not record.status.is_final:
            return False
        self._drop(task_id)
        self._idempotency.release(task_id)
        self.webhooks.discard(task_id)
        return True

    async def get(self, task_id: str) -> TaskRecord | None:
        """A copy of the record, or None when unknown or expired."""
        record = self._live(task_id)
        return copy.deepcopy(record) if record is not None else None

    async def list_tasks(
        self, tenant: str, filters: TaskFilter, page_no: int, page_size: int, *, oldest_first: bool = False
    ) -> tuple[list[TaskRecord], int]:
        """One page of `tenant`'s matching records, newest first (or oldest first), and the total
        count, from the tenant's time index: a page without filters costs the page; filters scan
        the window."""
        now = time.time()
        self._purge_expired(now)
        # Live records were submitted after now - ttl (see `_expired`).
        span = (tenant, filters.start_time, now - self._ttl_s, filters.end_time)
        if filters == TaskFilter(filters.start_time, filters.end_time):  # no filter: a page costs a page
            ids, total = self._index.page(*span, page_no, page_size, newest_first=not oldest_first)
            page = [self._records[task_id] for task_id in ids]
        else:
            window = self._index.window(*span)
            ordered = window if oldest_first else reversed(window)
            found = [r for i in ordered if (r := self._records.get(i)) is not None and matches(r, filters)]
            page, total = page_of(found, page_no, page_size), len(found)
        return [copy.deepcopy(r) for r in page], total

    def _purge_expired(self, now: float) -> None:
        """Drop expired records, oldest arrivals first (records arrive about in submit order)."""
        for task_id in self._index.arrived_before(now - self._ttl_s):
            record = self._records.get(task_id)
            if record is not None and self._expired(record, now):
                self._drop(task_id)

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """PENDING → CANCELED and drop the id from its tenant's FIFO; None if not PENDING."""
        record = self._live(task_id)
        if record is None or record.status != TaskStatus.PENDING:
            return None
        _move(record, TaskStatus.CANCELED)
        record.end_time = time.time()
        with contextlib.suppress(ValueError):
            self._pending.get(record.tenant, deque()).remove(task_id)
        self._finalized(record)
        return copy.deepcopy(record)

    async def claim(self, consumer: str, timeout_s: float) -> Claim | None:
        """Reclaim a timed-out job or take the next fair one, waiting up to `timeout_s`."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        cond = self._cond()
        first_pass = True
        async with cond:
            while True:
                found = self._claim_once(consumer, first_pass=first_pass)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                first_pass = False
                # Woken by submit/commit/release; the janitor interval bounds the wait.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cond.wait(), min(remaining, self._janitor.interval_s))

    async def reclaim(self, consumer: str) -> Claim | None:
        """Take over one job whose claim timed out (next attempt or poison)."""
        return self._reclaim_one(consumer)

    async def heartbeat(self, claim: Claim) -> bool:
        """True while `claim` is the current attempt of a RUNNING record; resets its idle time."""
        held = self._held.get(claim.entry_id)
        if self._fenced(claim) is None or held is None:
            return False
        held.beat_at, held.consumer = time.monotonic(), claim.consumer
        return True

    async def progress(self, claim: Claim, step: int, total: int) -> bool:
        """Store denoising progress, fenced by attempt."""
        record = self._fenced(claim)
        if record is None:
            return False
        record.progress_step, record.progress_total = step, total
        return True

    async def complete(self, claim: Claim, *, result_key: str, orig_prompt: str) -> bool:
        """RUNNING → SUCCEEDED (fenced), then acknowledge."""
        return await self._finish(claim, TaskStatus.SUCCEEDED, result_key=result_key, orig_prompt=orig_prompt)

    async def fail(self, claim: Claim, *, code: str, message: str) -> bool:
        """RUNNING → FAILED (fenced), then acknowledge."""
        return await self._finish(claim, TaskStatus.FAILED, code=code, message=message)

    async def _finish(self, claim: Claim, status: TaskStatus, **fields: Any) -> bool:
        record = self._fenced(claim)
        if record is None:
            return False
        for name, value in fields.items():
            setattr(record, name, value)
        _move(record, status)
        record.end_time = time.time()
        self._ack(claim)
        self._finalized(record)
        await self._notify()  # a running slot is free: a capped tenant may go on
        return True

    async def release(self, claim: Claim) -> None:
        """RUNNING → PENDING (fenced); the job goes to the front of its tenant's FIFO and the
        tenant to the front of the rotation."""
        record = self._fenced(claim)
        if record is None:
            return
        _move(record, TaskStatus.PENDING)
        record.scheduled_time = None
        record.progress_step = record.progress_total = None
        self._ack(claim)
        self._pending.setdefault(record.tenant, deque()).appendleft(claim.task_id)
        front = min(self._rotation.values(), default=0.0) - 1
        self._rotation[record.tenant] = min(self._rotation.get(record.tenant, front), front)
        await self._notify()

    async def depth(self) -> int:
        """Ids waiting to be claimed (expired records are skipped lazily)."""
        return self._depth()

    async def dead_letters(self, count: int = 100) -> list[str]:
        """Ids of the most recent poison jobs, newest first."""
        return list(itertools.islice(self._dead, count))

    async def announce(self, worker: str, models: Sequence[str], ttl_s: float) -> None:
        """Remember until when `worker` serves `models`."""
        self._presence[worker] = (time.time() + ttl_s, frozenset(models))

    async def served_models(self) -> set[str]:
        """Models of workers whose announcement has not run out."""
        return {model for models in (await self.workers()).values() for model in models}

    # -- the operators' view ----------------------------------------------------------------
    async def workers(self) -> dict[str, frozenset[str]]:
        """Workers whose announcement has not run out, and their models."""
        now = time.time()
        self._presence = {w: (until, m) for w, (until, m) in self._presence.items() if until > now}
        return {worker: models for worker, (_, models) in self._presence.items()}

    async def running(self) -> dict[str, int]:
        """Claimed jobs whose record is RUNNING, per model."""
        records = (self._live(held.task_id) for held in list(self._held.values()))
        return dict(Counter(r.model for r in records if r is not None and r.status == TaskStatus.RUNNING))

    async def failures(self, since: float) -> dict[str, int]:
        """Live FAILED records that ended at or after `since`, by code."""
        now = time.time()
        failed = (
            r
            for r in self._records.values()
            if r.status == TaskStatus.FAILED and (r.end_time or 0.0) >= since and not self._expired(r, now)
        )
        return dict(Counter(r.code or "InternalError" for r in failed))

    async def ping(self) -> bool:
        """Always reachable."""
        return True

    async def close(self) -> None:
        """Nothing to release."""
