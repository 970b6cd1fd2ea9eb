"""`GET /metrics`: the facade's Prometheus exposition, with the queue depth read fresh."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.jobs.base import TaskQueue
from server.metrics import MetricsRecorder, PrometheusMetrics

log = logging.getLogger(__name__)

QUEUE_DEPTH_INTERVAL_S = 5.0


class MetricsEndpoint:
    """The facade's metrics area: its recorder on Prometheus, and the queue whose depth it shows."""

    def __init__(self, recorder: MetricsRecorder, backend: PrometheusMetrics, queue: TaskQueue) -> None:
        self.recorder = recorder
        self.backend = backend
        self.queue = queue

    async def refresh_queue_depth(self) -> None:
        """Set `paddock_queue_depth` from the queue; a failing backend leaves the last value."""
        try:
            self.recorder.set_queue_depth(await self.queue.depth())
        except Exception:
            log.warning("queue depth unavailable", exc_info=True)

    async def refresh_forever(self, interval_s: float = QUEUE_DEPTH_INTERVAL_S) -> None:
        """Keep the gauge fresh between scrapes (started by the app's lifespan)."""
        while True:
            await self.refresh_queue_depth()
            await asyncio.sleep(interval_s)


router = APIRouter()


def metrics_endpoint(request: Request) -> MetricsEndpoint:
    """The metrics area's object."""
    return cast(MetricsEndpoint, request.app.state.metrics)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    endpoint = metrics_endpoint(request)
    await endpoint.refresh_queue_depth()
    return Response(endpoint.backend.exposition(), media_type=CONTENT_TYPE_LATEST)
