"""`GET /metrics`, the HTTP metrics/logging middleware and the queue-depth refresher of the facade.

The middleware labels requests by the matched route TEMPLATE (`/api/v1/tasks/{task_id}`), never
the raw path (task ids would make the label unbounded); requests no route matched are
`route="unmatched"`. It is a plain ASGI middleware, so the contextvar it sets (the request id,
for log lines) reaches the handlers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import metrics
from server.jobs.base import TaskQueue
from server.logging import request_id_var

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


def route_template(scope: Scope) -> str:
    """The matched route's path template, or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Counts and times every HTTP request by route template and logs one line per request.

    Sets `request_id_var` from the id the app assigns (`request.state.request_id`) when that
    exists by the time the response starts, else a fresh one, so every log line of the request
    carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id_var.set(str(uuid.uuid4()))
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before starting a response

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = str(scope.get("method", "GET"))
        metrics.observe_http(method, route, status, seconds)
        state = scope.get("state") or {}
        request_id = state.get("request_id") if isinstance(state, dict) else None
        # The path only, never the query string: file URLs carry signatures there.
        log.info(
            "%s %s %d",
            method,
            scope.get("path", ""),
            status,
            extra={
                "route": route,
                "status": status,
                "duration_s": round(seconds, 4),
                "request_id": request_id or request_id_var.get(),
            },
        )
