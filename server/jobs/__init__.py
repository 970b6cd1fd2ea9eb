"""The task store and job queue: pick a backend by URL (DESIGN.md §1)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from server.jobs.base import (
    Claim,
    DuplicateTask,
    Limits,
    QueueObserver,
    QuotaExceeded,
    TaskFilter,
    TaskQueue,
)
from server.jobs.idempotency import IdempotencyKey, IdempotencyMismatch
from server.jobs.memory import DEFAULT_CLAIM_TIMEOUT_S, DEFAULT_MAX_ATTEMPTS, MemoryTaskQueue
from server.jobs.outbox import DeadDelivery, Delivery, WebhookOutbox
from server.jobs.redis import RedisTaskQueue
from server.jobs.redis_layout import DEFAULT_PREFIX

if TYPE_CHECKING:
    from server.config import Settings

__all__ = [
    "Claim",
    "DeadDelivery",
    "Delivery",
    "DuplicateTask",
    "IdempotencyKey",
    "IdempotencyMismatch",
    "Limits",
    "MemoryTaskQueue",
    "QueueObserver",
    "QuotaExceeded",
    "RedisTaskQueue",
    "TaskFilter",
    "TaskQueue",
    "WebhookOutbox",
    "make_task_queue",
    "queue_from_settings",
]

REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def make_task_queue(
    url: str,
    *,
    ttl_s: int,
    stream_maxlen: int = 100_000,
    prefix: str = DEFAULT_PREFIX,
    claim_timeout_s: float = DEFAULT_CLAIM_TIMEOUT_S,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    observer: QueueObserver | None = None,
) -> TaskQueue:
    """`memory://` → MemoryTaskQueue; `redis://host:port/db`, `rediss://`, `unix://` → RedisTaskQueue.

    `claim_timeout_s`, `max_attempts` and `observer` matter to workers only (reclaim and poison
    jobs happen inside their claims)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryTaskQueue(
            ttl_s=ttl_s, claim_timeout_s=claim_timeout_s, max_attempts=max_attempts, observer=observer
        )
    if scheme in REDIS_SCHEMES:
        return RedisTaskQueue.from_url(
            url,
            ttl_s=ttl_s,
            stream_maxlen=stream_maxlen,
            prefix=prefix,
            claim_timeout_s=claim_timeout_s,
            max_attempts=max_attempts,
            observer=observer,
        )
    raise ValueError(
        # The URL itself is left out: it may carry a password.
        f"unsupported queue URL scheme {scheme or '(none)'!r}: "
        "use memory:// or redis://host:port/db (also rediss://, unix://)"
    )


def queue_from_settings(settings: Settings, *, observer: QueueObserver | None = None) -> TaskQueue:
    """The queue `settings` name, with its TTL, claim timeout and attempt limit: what the facade,
    `paddock worker` and Ray replicas all open (through `server.wiring.wire`)."""
    return make_task_queue(
        settings.queue_url,
        ttl_s=settings.task_ttl_s,
        claim_timeout_s=settings.claim_timeout_s,
        max_attempts=settings.max_attempts,
        observer=observer,
    )
