"""The task store and job queue interface, shared by the facade and the workers.

Two implementations: `memory.MemoryTaskQueue` (one process) and `redis.RedisTaskQueue`
(Redis hashes for records, a Redis Stream with a consumer group for jobs). One contract test
suite (`tests/server/jobs/test_queue_contract.py`) runs against both.

Delivery is at-least-once: a claimed job is acknowledged only by `complete` or `fail`. Every
worker-side write carries the `Claim`, whose `attempt` fences it: a write from an older attempt,
or to a record that is already final, changes nothing and returns False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from server.jobs.job import TaskRecord, TaskStatus


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one job: which task, which attempt, and the queue entry behind it."""

    task_id: str
    attempt: int
    entry_id: str
    consumer: str
    record: TaskRecord


@dataclass(frozen=True)
class TaskFilter:
    """List filters (API.md §3 list). Times are epoch seconds, inclusive."""

    start_time: float
    end_time: float
    status: TaskStatus | None = None
    model: str | None = None
    task_id: str | None = None
    workspace: str | None = None


class TaskQueue(Protocol):
    """Records and jobs behind one interface."""

    async def submit(self, record: TaskRecord) -> None:
        """Store `record` (PENDING) and enqueue its job, atomically: both or neither.

        Raises `DuplicateTask` if the id exists."""

    async def get(self, task_id: str) -> TaskRecord | None:
        """The record, or None when it never existed or has expired (TTL)."""

    async def list(
        self, tenant: str, filters: TaskFilter, page_no: int, page_size: int
    ) -> tuple[list[TaskRecord], int]:
        """One page of `tenant`'s records matching `filters`, newest first, and the total count."""

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """PENDING → CANCELED and remove the job from the queue, atomically with `claim`:
        exactly one of them wins. Returns the updated record, or None if the task was not PENDING
        (or does not exist)."""

    async def claim(self, consumer: str, timeout_s: float) -> Claim | None:
        """Wait up to `timeout_s` for a job; mark it RUNNING (attempt + 1, `scheduled_time` set).

        Jobs whose record is already final are acknowledged and skipped."""

    async def heartbeat(self, claim: Claim) -> bool:
        """Keep the claim alive while the job runs. False when the claim has been lost."""

    async def progress(self, claim: Claim, step: int, total: int) -> bool:
        """Record denoising progress, fenced by attempt."""

    async def complete(
        self, claim: Claim, *, result_key: str, usage: dict[str, Any], orig_prompt: str
    ) -> bool:
        """RUNNING → SUCCEEDED (fenced), then acknowledge the job. False if the fence failed."""

    async def fail(self, claim: Claim, *, code: str, message: str) -> bool:
        """RUNNING → FAILED (fenced), then acknowledge the job."""

    async def release(self, claim: Claim) -> None:
        """Hand a claimed job back so another worker takes it at once (graceful shutdown)."""

    async def depth(self) -> int:
        """Jobs waiting to be claimed."""

    async def ping(self) -> bool:
        """True when the backend is reachable."""

    async def close(self) -> None:
        """Release connections."""


class DuplicateTask(Exception):
    """`submit` was given a task id that already exists."""
