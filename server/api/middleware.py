"""The facade's ASGI middleware, outermost first:

1. `ObservabilityMiddleware` owns the request id: it makes one per request, puts it in the scope's
   state (routes read it with `deps.request_id`) and in the log context, then counts, times and
   logs the request by route template (never the raw path: task ids would make the label
   unbounded; requests no route matched are `route="unmatched"`).
2. `BodyLimitMiddleware` refuses a body larger than the route allows (413) before reading it when
   `Content-Length` says so, and while it streams otherwise (chunked uploads).
3. `UnhandledErrorMiddleware` turns an exception no handler took into the 500 of API.md §4 and
   keeps the connection open: Starlette's own catch-all re-raises after answering, which makes
   the server drop a keep-alive connection without `Connection: close`.

All three are plain ASGI, so the contextvar set by the first reaches the handlers.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.errorbody import error_payload
from server.errors import DashScopeError, PayloadTooLarge
from server.logging import request_id_var
from server.metrics import MetricsRecorder

log = logging.getLogger("paddock.http")

INTERNAL_MESSAGE = "An internal error occurred, please retry later."


def route_template(scope: Scope) -> str:
    """The matched route's path template, or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def scope_request_id(scope: Scope) -> str:
    """The request id `ObservabilityMiddleware` stored for this request."""
    state = scope.get("state") or {}
    rid = state.get("request_id") if isinstance(state, dict) else None
    return str(rid) if rid else (request_id_var.get() or str(uuid.uuid4()))


async def send_error(send: Send, scope: Scope, error: DashScopeError, *, close: bool = False) -> None:
    """Answer with `error` in the error shape of the request's surface (`errorbody`)."""
    body = json.dumps(error_payload(str(scope.get("path", "")), scope_request_id(scope), error)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ObservabilityMiddleware:
    """Request id, HTTP metrics and one log line per request."""

    def __init__(self, app: ASGIApp, *, recorder: MetricsRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500  # what the client gets if nothing answers

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, status, time.perf_counter() - started, rid)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        route = route_template(scope)
        method = str(scope.get("method", "GET"))
        self.recorder.observe_http(method, route, status, seconds)
        # The path only, never the query string: file URLs carry signatures there.
        log.info(
            "%s %s %d",
            method,
            scope.get("path", ""),
            status,
            extra={"route": route, "status": status, "duration_s": round(seconds, 4), "request_id": rid},
        )


class BodyLimitMiddleware:
    """Caps request bodies: `limit_for(path)` bytes, or None for no cap."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(str(scope.get("path", ""))) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(f"The request body is larger than the {_size(limit)} this route accepts.")
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            # The body is never read, so the connection cannot be reused for another request.
            await send_error(send, scope, too_large, close=True)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large
            return message

        await self.app(scope, counted, send)


class UnhandledErrorMiddleware:
    """The last resort: log an unexpected exception with its request id and answer 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise  # half a response is out: only dropping the connection tells the client
            log.exception("unhandled error", extra={"request_id": scope_request_id(scope)})
            await send_error(send, scope, DashScopeError(INTERNAL_MESSAGE))


def _size(nbytes: int) -> str:
    return f"{nbytes / (1024 * 1024):g} MB" if nbytes >= 1024 * 1024 else f"{nbytes} bytes"
