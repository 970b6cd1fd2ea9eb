"""The task store and job queue: pick a backend by URL (DESIGN.md §1)."""

from __future__ import annotations

from urllib.parse import urlsplit

from server.jobs.base import Claim, DuplicateTask, TaskFilter, TaskQueue
from server.jobs.memory import MemoryTaskQueue
from server.jobs.redis import DEFAULT_PREFIX, RedisTaskQueue

__all__ = [
    "Claim",
    "DuplicateTask",
    "MemoryTaskQueue",
    "RedisTaskQueue",
    "TaskFilter",
    "TaskQueue",
    "make_task_queue",
]

REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def make_task_queue(
    url: str, *, ttl_s: int, stream_maxlen: int = 100_000, prefix: str = DEFAULT_PREFIX
) -> TaskQueue:
    """`memory://` → MemoryTaskQueue; `redis://host:port/db`, `rediss://`, `unix://` → RedisTaskQueue."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryTaskQueue(ttl_s=ttl_s)
    if scheme in REDIS_SCHEMES:
        return RedisTaskQueue.from_url(url, ttl_s=ttl_s, stream_maxlen=stream_maxlen, prefix=prefix)
    raise ValueError(
        # The URL itself is left out: it may carry a password.
        f"unsupported queue URL scheme {scheme or '(none)'!r}: "
        "use memory:// or redis://host:port/db (also rediss://, unix://)"
    )
