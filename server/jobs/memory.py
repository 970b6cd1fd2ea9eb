"""`memory://`: the task store and job queue inside one process (asyncio).

For `paddock serve` (facade and worker share the process) and unit tests. Nothing survives a
restart. Every method runs on one event loop, so a check-then-set with no `await` between is
atomic: that is what makes `cancel` and `claim` mutually exclusive here.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections import OrderedDict
from typing import Any

from server.jobs.base import Claim, DuplicateTask, TaskFilter
from server.jobs.job import TaskRecord, TaskStatus


def matches(record: TaskRecord, filters: TaskFilter) -> bool:
    """True when `record` passes every list filter (shared by both backends)."""
    return (
        filters.start_time <= record.submit_time <= filters.end_time
        and (filters.status is None or record.status == filters.status)
        and (filters.model is None or record.model == filters.model)
        and (filters.task_id is None or record.task_id == filters.task_id)
        and (filters.workspace is None or record.workspace == filters.workspace)
    )


def page_of(records: list[TaskRecord], page_no: int, page_size: int) -> list[TaskRecord]:
    """Slice one page (page_no starts at 1) out of an already ordered list."""
    start = max(page_no - 1, 0) * page_size
    return records[start : start + page_size]


class MemoryTaskQueue:
    """In-process `TaskQueue`: records in a dict, jobs in an ordered FIFO of entry ids.

    `ttl_s` counts from each record's `submit_time`; expired records are dropped lazily (on
    access and on `list`). An entry stays in `_pending` from `claim` until `complete`/`fail`,
    mirroring a stream consumer group's pending list.
    """

    def __init__(self, *, ttl_s: int) -> None:
        self._ttl_s = ttl_s
        self._records: dict[str, TaskRecord] = {}
        self._waiting: OrderedDict[str, str] = OrderedDict()  # entry id -> task id, FIFO
        self._pending: dict[str, str] = {}  # entry id -> task id, claimed and not acked
        self._entry_of: dict[str, str] = {}  # task id -> its current entry id
        self._ids = itertools.count(1)
        self._wakeup: asyncio.Condition | None = None

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
        self._records.pop(task_id, None)
        entry = self._entry_of.pop(task_id, None)
        if entry is not None:
            self._waiting.pop(entry, None)
            self._pending.pop(entry, None)

    def _enqueue(self, task_id: str, *, front: bool = False) -> None:
        entry = f"{next(self._ids)}-0"
        self._entry_of[task_id] = entry
        self._waiting[entry] = task_id
        if front:
            self._waiting.move_to_end(entry, last=False)

    async def _notify(self) -> None:
        cond = self._cond()
        async with cond:
            cond.notify()

    def _fenced(self, claim: Claim) -> TaskRecord | None:
        """The record if `claim` is still the current attempt of a RUNNING task, else None."""
        record = self._live(claim.task_id)
        if record is None or record.status != TaskStatus.RUNNING or record.attempt != claim.attempt:
            return None
        return record

    def _ack(self, task_id: str, entry_id: str) -> None:
        self._pending.pop(entry_id, None)
        if self._entry_of.get(task_id) == entry_id:
            del self._entry_of[task_id]

    def _take(self, consumer: str) -> Claim | None:
        """Pop waiting entries until one is claimable; skip (ack) those whose record is gone/final."""
        while self._waiting:
            entry, task_id = self._waiting.popitem(last=False)
            record = self._live(task_id)
            if record is None or record.status.is_final or self._entry_of.get(task_id) != entry:
                continue
            record.attempt += 1
            record.status = TaskStatus.RUNNING
            record.scheduled_time = time.time()
            record.progress_step = record.progress_total = None
            self._pending[entry] = task_id
            return Claim(task_id, record.attempt, entry, consumer, copy.deepcopy(record))
        return None

    # -- TaskQueue --------------------------------------------------------------------------
    async def submit(self, record: TaskRecord) -> None:
        """Store `record` and enqueue its job. Raises `DuplicateTask` if the id is live."""
        if self._live(record.task_id) is not None:
            raise DuplicateTask(record.task_id)
        self._records[record.task_id] = copy.deepcopy(record)
        self._enqueue(record.task_id)
        await self._notify()

    async def get(self, task_id: str) -> TaskRecord | None:
        """A copy of the record, or None when unknown or expired."""
        record = self._live(task_id)
        return copy.deepcopy(record) if record is not None else None

    async def list(
        self, tenant: str, filters: TaskFilter, page_no: int, page_size: int
    ) -> tuple[list[TaskRecord], int]:
        """One page of `tenant`'s matching records, newest first, and the total count."""
        now = time.time()
        for task_id in [t for t, r in self._records.items() if self._expired(r, now)]:
            self._drop(task_id)
        found = [r for r in self._records.values() if r.tenant == tenant and matches(r, filters)]
        found.sort(key=lambda r: r.submit_time, reverse=True)
        return [copy.deepcopy(r) for r in page_of(found, page_no, page_size)], len(found)

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """PENDING → CANCELED and drop the waiting entry; None if not PENDING."""
        record = self._live(task_id)
        if record is None or record.status != TaskStatus.PENDING:
            return None
        record.status = TaskStatus.CANCELED
        record.end_time = time.time()
        entry = self._entry_of.pop(task_id, None)
        if entry is not None:
            self._waiting.pop(entry, None)
        return copy.deepcopy(record)

    async def claim(self, consumer: str, timeout_s: float) -> Claim | None:
        """Wait up to `timeout_s` for a job and mark it RUNNING (attempt + 1)."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        cond = self._cond()
        async with cond:
            while True:
                found = self._take(consumer)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                try:
                    await asyncio.wait_for(cond.wait(), remaining)
                except TimeoutError:
                    return self._take(consumer)

    async def heartbeat(self, claim: Claim) -> bool:
        """True while `claim` is the current attempt of a RUNNING record."""
        return self._fenced(claim) is not None

    async def progress(self, claim: Claim, step: int, total: int) -> bool:
        """Store denoising progress, fenced by attempt."""
        record = self._fenced(claim)
        if record is None:
            return False
        record.progress_step, record.progress_total = step, total
        return True

    async def complete(
        self, claim: Claim, *, result_key: str, usage: dict[str, Any], orig_prompt: str
    ) -> bool:
        """RUNNING → SUCCEEDED (fenced), then acknowledge."""
        return self._finish(
            claim,
            TaskStatus.SUCCEEDED,
            result_key=result_key,
            usage=copy.deepcopy(usage),
            orig_prompt=orig_prompt,
        )

    async def fail(self, claim: Claim, *, code: str, message: str) -> bool:
        """RUNNING → FAILED (fenced), then acknowledge."""
        return self._finish(claim, TaskStatus.FAILED, code=code, message=message)

    def _finish(self, claim: Claim, status: TaskStatus, **fields: Any) -> bool:
        record = self._fenced(claim)
        if record is None:
            return False
        for name, value in fields.items():
            setattr(record, name, value)
        record.status = status
        record.end_time = time.time()
        self._ack(claim.task_id, claim.entry_id)
        return True

    async def release(self, claim: Claim) -> None:
        """RUNNING → PENDING and put the job back at the front of the queue (fenced)."""
        record = self._fenced(claim)
        if record is None:
            return
        record.status = TaskStatus.PENDING
        record.scheduled_time = None
        record.progress_step = record.progress_total = None
        self._ack(claim.task_id, claim.entry_id)
        self._enqueue(claim.task_id, front=True)
        await self._notify()

    async def depth(self) -> int:
        """Entries waiting to be claimed (expired or final records are skipped lazily)."""
        return len(self._waiting)

    async def ping(self) -> bool:
        """Always reachable."""
        return True

    async def close(self) -> None:
        """Nothing to release."""
