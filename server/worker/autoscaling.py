"""Autoscaling the Ray Serve workers from the Redis queue, not from HTTP traffic.

Replicas pull their jobs from Redis, so Serve sees no requests at all and its default policy
would scale to `min_replicas`. `QueueLagPolicy` is a class-based Serve policy (Ray 2.60:
`AutoscalingPolicy(policy_function="server.worker.autoscaling:QueueLagPolicy", policy_kwargs={...})`;
Serve instantiates the class once with the kwargs and calls it on every control-loop tick with an
`AutoscalingContext`) that asks for

    ceil((waiting + running) / jobs_per_replica) replicas, within [min_replicas, max_replicas]

where `waiting` is `TaskQueue.depth()` (the tenants' pending lists) and `running` the claimed,
unacknowledged entries (the stream group's PEL, which includes a dead replica's jobs until they
are reclaimed). Counting running jobs keeps a busy fleet from scaling down under its own jobs
the moment the backlog is claimed. Scale-to-zero works: an idle queue asks for `min_replicas`,
which may be 0, and the first job brings one replica back (Serve skips the upscale delay from 0).

What Serve adds around the returned number (`ray/serve/autoscaling_policy.py`,
`_apply_autoscaling_config`, applied to every custom policy): `upscale_delay_s`,
`downscale_delay_s`, `downscale_to_zero_delay_s`, the up/downscaling factors and the bounds. So
the delays live in the deployment's `autoscaling_config`, and this module only decides the number.

Redis is read at most every `poll_interval_s`, by a one-shot task on the controller's event loop
with its own connection, closed after the read (as Serve's `AsyncInferenceAutoscalingPolicy`
does): the policy object holds no connection and no long-lived task, so dropping it on redeploy
leaks nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ray.serve.config import AutoscalingContext

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 5.0
# A reading older than this (Redis unreachable since) no longer drives decisions: hold instead.
DEFAULT_STALE_AFTER_S = 60.0
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


@dataclass(frozen=True)
class QueueLoad:
    """One reading of the queue: jobs waiting to be claimed and jobs claimed but not finished."""

    waiting: int
    running: int

    @property
    def total(self) -> int:
        return self.waiting + self.running


def desired_replicas(load: int, *, jobs_per_replica: int, min_replicas: int, max_replicas: int) -> int:
    """Replicas for `load` jobs when each replica holds `jobs_per_replica` at once, clamped to
    [min_replicas, max_replicas] (min may be 0: an empty queue then needs no replica)."""
    wanted = math.ceil(max(0, load) / max(1, jobs_per_replica))
    return max(min_replicas, min(max_replicas, wanted))


LoadReader = Callable[[str, str], Awaitable[QueueLoad]]


async def read_queue_load(queue_url: str, prefix: str) -> QueueLoad:
    """`depth()` and the stream group's pending count, over a connection opened and closed here."""
    import redis.asyncio as aioredis
    from redis.exceptions import ResponseError

    from server.jobs.redis import RedisTaskQueue
    from server.jobs.redis_layout import GROUP_NAME, STREAM_KEY

    client = aioredis.Redis.from_url(
        queue_url, decode_responses=True, socket_timeout=5.0, socket_connect_timeout=5.0
    )
    try:
        waiting = await RedisTaskQueue(client, ttl_s=1, prefix=prefix).depth()
        try:
            summary = await client.xpending(STREAM_KEY.format(p=prefix), GROUP_NAME.format(p=prefix))
            running = int(summary.get("pending", 0))
        except ResponseError:  # NOGROUP: no worker has claimed anything yet
            running = 0
        return QueueLoad(waiting=waiting, running=running)
    finally:
        await client.aclose()


class QueueLagPolicy:
    """Serve autoscaling policy: replicas for the Redis queue's backlog plus its running jobs.

    `queue_url` defaults to the controller's `PADDOCK_QUEUE_URL`; `jobs_per_replica` should be the
    replicas' `max_concurrent_jobs`. `read_load` and `clock` (monotonic seconds) are for tests."""

    def __init__(
        self,
        queue_url: str | None = None,
        jobs_per_replica: int = 1,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        prefix: str | None = None,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        read_load: LoadReader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from server.jobs.redis_layout import DEFAULT_PREFIX

        self.queue_url = queue_url or os.environ.get("PADDOCK_QUEUE_URL", "")
        if urlsplit(self.queue_url).scheme.lower() not in REDIS_SCHEMES:
            raise ValueError("QueueLagPolicy needs a redis:// queue_url (policy_kwargs or PADDOCK_QUEUE_URL)")
        self.jobs_per_replica = max(1, int(jobs_per_replica))
        self.poll_interval_s = float(poll_interval_s)
        self.prefix = prefix or DEFAULT_PREFIX
        self.stale_after_s = float(stale_after_s)
        self._read = read_load or read_queue_load
        self._clock = clock
        self._load: QueueLoad | None = None
        self._load_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._last_poll = -math.inf

    def __call__(self, ctx: AutoscalingContext) -> tuple[int, dict[str, Any]]:
        """(desired replicas, policy state) for this tick; no reading yet (or a stale one) holds
        the current target."""
        self._maybe_poll()
        load = self.load()
        if load is None:
            return ctx.target_num_replicas, {}
        desired = desired_replicas(
            load.total,
            jobs_per_replica=self.jobs_per_replica,
            min_replicas=ctx.capacity_adjusted_min_replicas,
            max_replicas=ctx.capacity_adjusted_max_replicas,
        )
        return desired, {"queue_waiting": load.waiting, "queue_running": load.running}

    def load(self) -> QueueLoad | None:
        """The latest reading, or None when there is none younger than `stale_after_s`."""
        if self._load is None or self._clock() - self._load_at > self.stale_after_s:
            return None
        return self._load

    def _maybe_poll(self) -> None:
        # One read in flight at most, one per interval; the task ends after one read.
        if self._task is not None and not self._task.done():
            return
        now = self._clock()
        if now - self._last_poll < self.poll_interval_s:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # Serve calls policies on the controller's loop; nothing to poll from
            return
        self._last_poll = now
        self._task = loop.create_task(self._poll_once())

    async def _poll_once(self) -> None:
        try:
            self._load = await self._read(self.queue_url, self.prefix)
            self._load_at = self._clock()
        except Exception as exc:
            # Not the URL: it may carry a password.
            log.warning("queue depth read failed (%s); keeping the last reading", type(exc).__name__)
