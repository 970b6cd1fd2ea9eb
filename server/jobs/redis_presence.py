"""Worker presence and the operators' view on Redis: which workers announced which models, the
jobs running per model, and recent failures by code (layout: redis_layout.py)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis

from server.jobs.redis_layout import FAILURES_KEY, FAILURES_MAXLEN, PRESENCE_KEY, STREAM_FIELD, TASK_KEY


class RedisPresence:
    """Reads and writes what `RedisTaskQueue`'s presence and operator methods need."""

    def __init__(self, client: aioredis.Redis, prefix: str, stream: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._stream = stream

    def _key(self, template: str, **parts: str) -> str:
        return template.format(p=self._prefix, **parts)

    async def announce(self, worker: str, models: Sequence[str], ttl_s: float) -> None:
        """One hash field per worker; Redis 7.0 has no per-field TTL, so readers prune."""
        body = json.dumps({"until": time.time() + ttl_s, "models": sorted(models)})
        await self._redis.hset(self._key(PRESENCE_KEY), worker, body)

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

    async def log_failure(self, model: str, code: str) -> None:
        # After the fenced commit, not inside it: a worker dying in between leaves one failure
        # uncounted in the operators' view, and nothing else.
        await self._redis.xadd(
            self._key(FAILURES_KEY),
            {"code": code, "model": model},
            maxlen=FAILURES_MAXLEN,
            approximate=True,
        )
