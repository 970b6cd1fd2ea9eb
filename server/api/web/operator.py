"""The operators' view (`GET /web/operator`, admin keys only): what the queue says right now.

Every number is read from the shared queue, never from this process's Prometheus registry, so it
is the same whether this facade runs the worker in-process (`paddock serve`) or separate workers
share a Redis queue with any number of facades (`paddock api` + `paddock worker`):

- queue depth: `TaskQueue.depth()`, the number behind `paddock_queue_depth`;
- ready workers: the live announcements (`TaskQueue.workers()`): a worker announces once its
  models are loaded, like `paddock_workers_ready`, and withdraws when it stops;
- running jobs per model: `TaskQueue.running()`, over every worker (`paddock_jobs_running` is
  per process);
- recent failures by code: `TaskQueue.failures()`, the FAILED part of `paddock_jobs_total`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.jobs.base import TaskQueue

FAILURE_WINDOW_S = 3600


async def operator_view(queue: TaskQueue, *, now: float | None = None) -> dict[str, Any]:
    """One snapshot of the fleet, read concurrently from the queue."""
    now = time.time() if now is None else now
    depth, workers, running, failures = await asyncio.gather(
        queue.depth(), queue.workers(), queue.running(), queue.failures(since=now - FAILURE_WINDOW_S)
    )
    return {
        "queue_depth": depth,
        "workers_ready": len(workers),
        "workers": [{"name": name, "models": sorted(models)} for name, models in sorted(workers.items())],
        "running": dict(sorted(running.items())),
        "running_total": sum(running.values()),
        "failures": {"window_s": FAILURE_WINDOW_S, "by_code": dict(sorted(failures.items()))},
    }
