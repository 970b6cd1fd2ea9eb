"""The facade's ASGI middleware, outermost first:

1. `ObservabilityMiddleware` owns the request id: it makes one per request, puts it in the scope's
   state (routes read it with `deps.request_id`) and in the log context, then counts, times and
   logs the request by route template (never the raw path: task ids would make the label
   unbounded; requests no route matched are `route="unmatched"`).
2. `HotRouteMiddleware` answers the poll route itself, past the framework's routing layers.
3. `BodyLimitMiddleware` refuses a body larger than the route allows (413) before reading it when
   `Content-Length` says so, and while it streams otherwise (chunked uploads).

The first is also the last resort for an exception no handler took (the 500 of API.md §4).

All are plain ASGI, so the contextvar set by the first reaches the handlers.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.errorbody import error_headers, error_payload
from server.errors import DashScopeError, PayloadTooLarge
from server.logging import request_id_var
from server.metrics import MetricsRecorder

log = logging.getLogger("paddock.http")

INTERNAL_MESSAGE = "An internal error occurred, please retry later."
# Routes clients poll (DashScope's task query, and the OpenAI surface's retrieve).
QUIET_ROUTES = frozenset({"/api/v1/tasks/{task_id}", "/v1/videos/{video_id}"})


class TemplatedRoute(Route):
    """A plain Starlette route that, like FastAPI's, names itself in the scope (`scope["route"]`),
    so metrics and logs label its requests by template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


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
    headers += [(name.encode(), value.encode()) for name, value in error_headers(error).items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ObservabilityMiddleware:
    """Request id, HTTP metrics and one log line per request; and the last resort: an exception
    no handler took becomes the DashScope 500 (logged with its request id), without re-raising,
    so the server keeps the connection (Starlette's own catch-all re-raises after answering, and
    the server then drops a keep-alive connection without `Connection: close`)."""

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
        status = 0  # no response yet

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if status:
                raise  # half a response is out: only dropping the connection tells the client
            log.exception("unhandled error", extra={"request_id": rid})
            await send_error(send_wrapper, scope, DashScopeError(INTERNAL_MESSAGE))
        finally:
            self._record(scope, status or 500, time.perf_counter() - started, rid)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        route = route_template(scope)
        method = str(scope.get("method", "GET"))
        self.recorder.observe_http(method, route, status, seconds)
        # A client polls its task every few seconds: answered polls are routine and counted in the
        # metrics, so their line is DEBUG; everything else, and every failure, is INFO.
        level = logging.DEBUG if method == "GET" and route in QUIET_ROUTES and status < 400 else logging.INFO
        if not log.isEnabledFor(level):
            return
        # The path only, never the query string: file URLs carry signatures there.
        log.log(
            level,
            "%s %s %d",
            method,
            scope.get("path", ""),
            status,
            extra={"route": route, "status": status, "duration_s": round(seconds, 4), "request_id": rid},
        )


class HotRouteMiddleware:
    """Answers the routes clients poll (`routes`, matched in full) without the framework's router
    and exception layers: a poll is most of what a facade serves, and those layers cost it about
    8 % of its CPU (README, "The facade's own capacity"). A `DashScopeError` the route raises
    becomes the error body here, as the app's handler would answer it; any other exception goes
    on out to `ObservabilityMiddleware`'s 500. Everything else, including a wrong method on a hot
    path, goes on to the app."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await self._answer(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await route.endpoint(Request(scope, receive))
        except DashScopeError as error:
            await send_error(send, scope, error)
            return
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """Caps request bodies: `limit_for(path)` bytes, or None for no cap."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = None if scope["type"] != "http" or _bodiless(scope) else self.limit_for(str(scope["path"]))
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


def _bodiless(scope: Scope) -> bool:
    """A GET/HEAD/DELETE/OPTIONS that announces no body (most requests: the poll)."""
    if scope.get("method") not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        return False
    headers = scope.get("headers") or ()
    return not any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)


def _size(nbytes: int) -> str:
    return f"{nbytes / (1024 * 1024):g} MB" if nbytes >= 1024 * 1024 else f"{nbytes} bytes"
