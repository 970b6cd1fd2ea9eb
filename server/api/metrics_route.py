"""`GET /metrics` and the queue-depth refresher of the facade (the HTTP series are recorded by
`middleware.ObservabilityMiddleware`)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import metrics
from server.jobs.base import TaskQueue

log = logging.getLogger("paddock.http")

QUEUE_DEPTH_INTERVAL_S = 5.0

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of `server.metrics.REGISTRY` (queue depth read fresh)."""
    services = getattr(request.app.state, "services", None)
    if services is not None:
        await refresh_queue_depth(services.queue)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def refresh_queue_depth(queue: TaskQueue) -> None:
    """Set `paddock_queue_depth` from the queue; a failing backend leaves the last value."""
    try:
        metrics.set_queue_depth(await queue.depth())
    except Exception:
        log.warning("queue depth unavailable", exc_info=True)


async def refresh_queue_depth_forever(queue: TaskQueue, interval_s: float = QUEUE_DEPTH_INTERVAL_S) -> None:
    """Keep the queue-depth gauge fresh between scrapes (started by the app's lifespan)."""
    while True:
        await refresh_queue_depth(queue)
        await asyncio.sleep(interval_s)
