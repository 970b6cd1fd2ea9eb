"""The webhook outbox: deliveries queued by the same step that makes a task final.

When a task with a `webhook_url` becomes SUCCEEDED, FAILED or CANCELED, the queue adds one
delivery in the very step that writes the final status (inside the Lua script on Redis, in the same
synchronous block in memory), so no crash between the commit and the notification can lose it.
Facades run the delivery loop (`server.api.webhooks`): `claim` hides a due delivery for a lease,
the loop POSTs it, then `succeeded`, `retry` (due again after a delay) or `dead_letter`. A facade
that dies mid-delivery leaves the lease to run out, and another facade takes it: delivery is at
least once, and every attempt of one delivery carries the same id (`webhook-id`), so receivers
can drop repeats.

Two implementations: `MemoryOutbox` here and `redis_outbox.RedisOutbox`; the outbox contract tests
(`tests/server/jobs/test_outbox_contract.py`) run on both.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Protocol

DEAD_KEPT = 10_000


@dataclass(frozen=True)
class Delivery:
    """One notification of one task's final state. `attempt` counts from 1 (this attempt)."""

    task_id: str
    tenant: str
    url: str
    status: str  # the final status that triggered it
    attempt: int = 1

    @property
    def id(self) -> str:
        """The Standard Webhooks message id: one per task (a task becomes final once)."""
        return f"msg_{self.task_id}"


@dataclass(frozen=True)
class DeadDelivery:
    """A delivery given up on, and why."""

    task_id: str
    url: str
    attempts: int
    reason: str


class WebhookOutbox(Protocol):
    """Deliveries waiting to be made, shared by every facade on one queue."""

    async def claim(self, *, count: int, lease_s: float) -> list[Delivery]:
        """Up to `count` due deliveries, each hidden from other claims for `lease_s`."""

    async def succeeded(self, delivery: Delivery) -> None:
        """The receiver took it: forget the delivery."""

    async def retry(self, delivery: Delivery, *, delay_s: float) -> None:
        """This attempt failed: due again after `delay_s`, as the next attempt."""

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        """Give up on the delivery: it moves to the dead letters."""

    async def waiting(self) -> int:
        """Deliveries not yet made (due, leased or waiting for a retry)."""

    async def dead(self, count: int = 100) -> list[DeadDelivery]:
        """The most recent dead letters, newest first."""


@dataclass
class _Entry:
    delivery: Delivery
    due: float  # epoch seconds


class MemoryOutbox:
    """`WebhookOutbox` inside one process. `add` and `discard` are synchronous on purpose: the
    memory queue calls them in the same step as the status change (no await in between)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._dead: deque[DeadDelivery] = deque(maxlen=DEAD_KEPT)

    def add(self, delivery: Delivery) -> None:
        """Queue `delivery`, due now."""
        self._entries[delivery.task_id] = _Entry(delivery, time.time())

    def discard(self, task_id: str) -> None:
        """Drop the task's delivery (the task was deleted)."""
        self._entries.pop(task_id, None)

    async def claim(self, *, count: int, lease_s: float) -> list[Delivery]:
        now = time.time()
        due = sorted((e for e in self._entries.values() if e.due <= now), key=lambda e: e.due)[:count]
        for entry in due:
            entry.due = now + lease_s
        return [entry.delivery for entry in due]

    async def succeeded(self, delivery: Delivery) -> None:
        self._entries.pop(delivery.task_id, None)

    async def retry(self, delivery: Delivery, *, delay_s: float) -> None:
        entry = self._entries.get(delivery.task_id)
        if entry is not None:
            entry.delivery = replace(delivery, attempt=delivery.attempt + 1)
            entry.due = time.time() + delay_s

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        if self._entries.pop(delivery.task_id, None) is not None:
            self._dead.appendleft(DeadDelivery(delivery.task_id, delivery.url, delivery.attempt, reason))

    async def waiting(self) -> int:
        return len(self._entries)

    async def dead(self, count: int = 100) -> list[DeadDelivery]:
        return list(self._dead)[:count]
