"""The FastAPI facade: `create_app` wires one serving object per area, the routers and the one
DashScope error shape.

Never imports torch or ray. `paddock serve` passes a `worker_factory` (built in `server.worker`)
so the same app also runs an in-process worker on its event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from model.registry import ModelSpec
from server.api import files, health, metrics_route
from server.api.deps import request_id
from server.api.errorbody import error_headers, error_payload, is_openai_path
from server.api.health import Readiness
from server.api.metrics_route import MetricsEndpoint
from server.api.middleware import (
    INTERNAL_MESSAGE,
    BodyLimitMiddleware,
    HotRouteMiddleware,
    ObservabilityMiddleware,
)
from server.api.openai import routes as openai_routes
from server.api.openai.service import VideosService
from server.api.openai.wire import CreateVideoRequest, RemixVideoRequest
from server.api.openapi import install_openapi
from server.api.tasks import routes as task_routes
from server.api.tasks.service import TaskService
from server.api.uploads import routes as upload_routes
from server.api.uploads.service import FORM_SLACK_BYTES, UPLOAD_PATH, UploadService
from server.api.web import Console
from server.api.web import router as web_router
from server.api.webhooks import WebhookDispatcher
from server.config import Settings
from server.errors import DashScopeError
from server.jobs.base import TaskQueue
from server.keys import KeyRing
from server.media import FetchPolicy, MediaFetcher
from server.metrics import MetricsRecorder, PrometheusMetrics
from server.storage.base import ObjectStore
from server.storage.local import LocalObjectStore
from server.wiring import Wiring, wire

log = logging.getLogger(__name__)


class BackgroundWorker(Protocol):
    """A worker the app runs on its own loop (`server.worker.runner.JobRunner`)."""

    @property
    def ready(self) -> bool: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...


# Builds the in-process worker from the app's wiring and metrics (`server.worker.factory`).
WorkerFactory = Callable[[Wiring, MetricsRecorder], BackgroundWorker]


def create_app(
    settings: Settings,
    *,
    keys: KeyRing | None = None,
    queue: TaskQueue | None = None,
    store: ObjectStore | None = None,
    registry: dict[str, ModelSpec] | None = None,
    worker_factory: WorkerFactory | None = None,
) -> FastAPI:
    """Build the facade. Anything not passed in is built from `settings`."""
    if keys is None:
        keys, _ = KeyRing.load_or_create(settings.api_keys, settings.data_dir)
    prometheus = PrometheusMetrics()
    recorder = MetricsRecorder(prometheus)
    wiring = wire(settings, observer=recorder, queue=queue, store=store, registry=registry)
    uploads = UploadService(wiring.store, wiring.signer, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fetcher = MediaFetcher(FetchPolicy.from_settings(settings))
        app.state.tasks = tasks = TaskService(wiring, fetcher=fetcher, uploads=uploads, metrics=recorder)
        app.state.videos = VideosService(tasks)
        app.state.webhooks = webhooks = WebhookDispatcher(
            wiring.queue, keys, settings, recorder, video_url=tasks.video_url
        )
        app.state.uploads = uploads
        app.state.keys = keys
        app.state.files = wiring.store if isinstance(wiring.store, LocalObjectStore) else None
        app.state.health = readiness = Readiness(wiring.queue)
        app.state.metrics = endpoint = MetricsEndpoint(recorder, prometheus, wiring.queue)
        app.state.web = Console(settings, wiring.registry, wiring.queue)
        background = [
            asyncio.create_task(_sweep_forever(wiring.store)),
            asyncio.create_task(endpoint.refresh_forever()),
            asyncio.create_task(webhooks.run_forever()),
        ]
        worker = worker_factory(wiring, recorder) if worker_factory is not None else None
        if worker is not None:
            readiness.worker = worker
            running = asyncio.create_task(worker.run())
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
                try:
                    await asyncio.wait_for(running, timeout=settings.shutdown_grace_s + 30)
                except TimeoutError:
                    running.cancel()
            for task in background:
                task.cancel()
            await fetcher.aclose()
            await webhooks.aclose()
            await wiring.queue.close()

    # No trailing-slash redirects: Starlette builds their Location from the client's Host header.
    app = FastAPI(
        title="paddock",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        # paddock's metrics and logs are its own: FastAPI's OpenTelemetry hooks would otherwise look
        # for configured providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # GET polls never get this far (HotRouteMiddleware answers them); in the router, the poll route
    # still gives other methods on its path their 405. Its description is `openapi.QUERY_DOC`.
    app.router.routes.append(task_routes.QUERY_ROUTE)
    app.include_router(task_routes.router)
    app.include_router(openai_routes.router)
    app.include_router(upload_routes.router)
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.include_router(web_router)  # the playground at /
    _install_error_handlers(app)
    install_openapi(app, list(wiring.registry), extra_models=(CreateVideoRequest, RemixVideoRequest))
    # add_middleware wraps what is there already: the last one added is the outermost.
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings))
    app.add_middleware(HotRouteMiddleware, routes=[task_routes.QUERY_ROUTE])
    app.add_middleware(ObservabilityMiddleware, recorder=recorder)
    return app


def body_limits(settings: Settings) -> Callable[[str], int | None]:
    """The body cap per path: the upload route takes files up to the upload limit (plus the form's
    other fields); everything else `PADDOCK_MAX_BODY_BYTES`."""
    upload_limit = settings.max_upload_mb * 1024 * 1024 + FORM_SLACK_BYTES

    def limit_for(path: str) -> int | None:
        return upload_limit if path == UPLOAD_PATH else settings.max_body_bytes

    return limit_for


def _install_error_handlers(app: FastAPI) -> None:
    """One error shape per surface for everything, framework errors included (API.md §4; the
    OpenAI shape under /v1/, `errorbody`)."""

    def answer(
        request: Request, error: DashScopeError, headers: Mapping[str, str] | None = None
    ) -> JSONResponse:
        body = error_payload(request.url.path, request_id(request), error)
        return JSONResponse(
            body, status_code=error.status, headers={**error_headers(error), **(headers or {})}
        )

    @app.exception_handler(DashScopeError)
    async def dashscope_error(request: Request, exc: DashScopeError) -> JSONResponse:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid value')}" if where else "Invalid request."
        return answer(request, DashScopeError(message, code="InvalidParameter", status=400))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
        message = "url error, please check url!" if exc.status_code in (404, 405) else str(exc.detail)
        if is_openai_path(request.url.path) and exc.status_code in (404, 405):
            message = f"Invalid URL ({request.method} {request.url.path})"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's `Allow` names only the first route on the path; a path can have several.
            headers["Allow"] = ", ".join(_allowed_methods(request, headers.get("Allow", "")))
        return answer(request, DashScopeError(message, code=code, status=exc.status_code), headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Only for errors outside ObservabilityMiddleware's own handling (in itself). Starlette
        # re-raises after this answer and the server then drops the connection: say so.
        log.exception("unhandled error", extra={"request_id": request_id(request)})
        return answer(request, DashScopeError(INTERNAL_MESSAGE), {"Connection": "close"})


def _allowed_methods(request: Request, allow: str) -> list[str]:
    """`allow` (Starlette's, which names only the first route on a path) and the methods the
    description lists for every path template the request's path matches."""
    methods = {m.strip() for m in allow.split(",") if m.strip()}
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return sorted(methods)


async def _sweep_forever(store: ObjectStore, interval_s: float = 300.0) -> None:
    """Delete expired objects of a local store now and then (S3 uses a lifecycle rule)."""
    if not isinstance(store, LocalObjectStore):
        return
    while True:
        try:
            removed = await asyncio.to_thread(store.sweep)
            if removed:
                log.info("swept %d expired objects", removed)
        except Exception:
            log.exception("object sweep failed")
        await asyncio.sleep(interval_s)
