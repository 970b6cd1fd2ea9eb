"""The task store and job queue interface, shared by the facade and the workers.

Two implementations: `memory.MemoryTaskQueue` (one process) and `redis.RedisTaskQueue`
(Redis hashes for records, a Redis Stream with a consumer group for jobs). One contract test
suite (`tests/server/jobs/test_queue_contract.py`) runs against both.

Delivery is at-least-once: a claimed job is acknowledged only by `complete` or `fail`. Every
worker-side write carries the `Claim`, whose `attempt` fences it: a write from an older attempt,
or to a record that is already final, changes nothing and returns False.

A claim whose worker stops heartbeating for `claim_timeout_s` is taken over by another worker's
`claim` (the janitor, `janitor.py`); after `max_attempts` such losses the job is a poison job:
FAILED, acknowledged, and its id goes to the dead letters. Scheduling is fair between tenants
(round robin over tenants with waiting jobs, skipping a tenant at its running cap), and `submit`
enforces the per-tenant and global `Limits`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from server.jobs.idempotency import IdempotencyKey
from server.jobs.job import TaskRecord, TaskStatus
from server.jobs.outbox import WebhookOutbox


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


@dataclass(frozen=True)
class Limits:
    """Admission and scheduling limits applied by `submit`; None means unlimited.

    `submit_per_s`, `running` and `pending` are the tenant's key-file quota (a token bucket of
    max(1, rate) submissions; running jobs beyond `running` stay PENDING; waiting jobs); the
    `queue_depth` cap counts every tenant's waiting jobs together."""

    submit_per_s: float | None = None
    running: int | None = None
    pending: int | None = None
    queue_depth: int | None = None

    @classmethod
    def from_quota(cls, quota: Mapping[str, Any], *, queue_depth: int | None = None) -> Limits:
        """From a key file's `quota: {submit_per_s, running, pending}` (any may be missing)."""
        rate, running, pending = (quota.get(k) for k in ("submit_per_s", "running", "pending"))
        return cls(
            submit_per_s=None if rate is None else float(rate),
            running=None if running is None else int(running),
            pending=None if pending is None else int(pending),
            queue_depth=queue_depth if queue_depth and queue_depth > 0 else None,
        )


# FAILED message of a poison job (`lost` = attempts whose worker died or stopped heartbeating).
POISON_CODE = "InternalError"
POISON_MESSAGE = "The task crashed its worker {lost} times; it will not be retried."


class QueueObserver(Protocol):
    """Hears what a queue decides on its own while claiming (`server.metrics.MetricsRecorder`)."""

    def job_retried(self) -> None:
        """A job whose worker died (stopped heartbeating) was given its next attempt."""

    def job_dead_lettered(self) -> None:
        """A job lost `max_attempts` attempts and failed for good (a poison job)."""


class QuotaExceeded(Exception):
    """`submit` refused by a limit: `rate`, `pending` (the tenant's) or `depth` (global)."""

    def __init__(self, kind: Literal["rate", "pending", "depth"]) -> None:
        super().__init__(kind)
        self.kind = kind


class TaskQueue(Protocol):
    """Records and jobs behind one interface."""

    @property
    def webhooks(self) -> WebhookOutbox:
        """Webhook deliveries, queued by the same step that makes a task with a `webhook_url` final."""

    async def submit(
        self, record: TaskRecord, *, limits: Limits | None = None, idempotency: IdempotencyKey | None = None
    ) -> str:
        """Store `record` (PENDING) and enqueue its job, atomically: both or neither. Returns the id
        of the task this submit stands for: `record.task_id`, or, when `idempotency` names a key
        already bound to the same request, that task's id (and nothing is stored).

        Raises `DuplicateTask` if the id exists, `QuotaExceeded` if `limits` refuse it,
        `IdempotencyMismatch` if the key is bound to a different request. The tenant's running cap
        in `limits` applies to its claims from now on."""

    async def idempotent_task(self, tenant: str, key: IdempotencyKey) -> tuple[str, str] | None:
        """The (task id, fingerprint) `key` is bound to for `tenant`, or None (a cheap look before
        the work of a create; `submit` decides atomically)."""

    async def delete(self, task_id: str) -> bool:
        """Remove a final record with its list entries, idempotency key and waiting webhook
        delivery. False (and nothing changes) when the task is unknown or not final."""

    async def get(self, task_id: str) -> TaskRecord | None:
        """The record, or None when it never existed or has expired (TTL)."""

    async def list_tasks(
        self, tenant: str, filters: TaskFilter, page_no: int, page_size: int, *, oldest_first: bool = False
    ) -> tuple[list[TaskRecord], int]:
        """One page of `tenant`'s records matching `filters`, newest first (`oldest_first`: oldest
        first), and the total count. Records submitted at the same time are ordered by task id.

        Costs a page, not the tenant's whole history: both backends read an index."""

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """PENDING → CANCELED and remove the job from the queue, atomically with `claim`:
        exactly one of them wins. Returns the updated record, or None if the task was not PENDING
        (or does not exist)."""

    async def claim(self, consumer: str, timeout_s: float) -> Claim | None:
        """Wait up to `timeout_s` for a job; mark it RUNNING (attempt + 1, `scheduled_time` set).

        A job whose claim timed out comes first (`reclaim`), then the next tenant in rotation
        below its running cap. Jobs whose record is already final are acknowledged and skipped."""

    async def reclaim(self, consumer: str) -> Claim | None:
        """Take over one job whose worker stopped heartbeating for `claim_timeout_s`: start its
        next attempt for `consumer`, or, after `max_attempts` lost attempts, fail it as a poison
        job (dead letter) and look further. None when no claim has timed out."""

    async def heartbeat(self, claim: Claim) -> bool:
        """Keep the claim alive while the job runs. False when the claim has been lost."""

    async def progress(self, claim: Claim, step: int, total: int) -> bool:
        """Record denoising progress, fenced by attempt."""

    async def complete(self, claim: Claim, *, result_key: str, orig_prompt: str) -> bool:
        """RUNNING → SUCCEEDED (fenced), then acknowledge the job. False if the fence failed."""

    async def fail(self, claim: Claim, *, code: str, message: str) -> bool:
        """RUNNING → FAILED (fenced), then acknowledge the job."""

    async def release(self, claim: Claim) -> None:
        """Hand a claimed job back so another worker takes it at once (graceful shutdown)."""

    async def depth(self) -> int:
        """Jobs waiting to be claimed."""

    async def dead_letters(self, count: int = 100) -> list[str]:
        """Ids of the most recent poison jobs, newest first."""

    async def announce(self, worker: str, models: Sequence[str], ttl_s: float) -> None:
        """Record that `worker` serves `models` for the next `ttl_s` seconds; workers repeat it
        while they run and announce nothing (ttl 0) when they stop."""

    async def served_models(self) -> set[str]:
        """The models some live worker announced."""

    # -- the operators' view (the playground's `GET /web/operator`) ------------------------
    async def workers(self) -> dict[str, frozenset[str]]:
        """Each live worker (its announcement has not run out) and the models it serves."""

    async def running(self) -> dict[str, int]:
        """RUNNING jobs per model, over every worker on this queue."""

    async def failures(self, since: float) -> dict[str, int]:
        """Tasks that became FAILED at or after `since` (epoch seconds), counted by error code."""

    async def ping(self) -> bool:
        """True when the backend is reachable."""

    async def close(self) -> None:
        """Release connections."""


class DuplicateTask(Exception):
    """`submit` was given a task id that already exists."""
