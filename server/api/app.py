"""The FastAPI facade: `create_app` wires services, routers and the one DashScope error shape.

Never imports torch or ray. `paddock serve` passes a `worker_factory` so the same app also runs
an in-process worker (`server.worker.runner.JobRunner`) on its event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from model.registry import ModelSpec, load_registry
from server.api import files, metrics_route, routes, uploads
from server.api.deps import Services, request_id
from server.api.errors import DashScopeError
from server.api.middleware import (
    INTERNAL_MESSAGE,
    BodyLimitMiddleware,
    ObservabilityMiddleware,
    UnhandledErrorMiddleware,
)
from server.api.openapi import install_openapi
from server.api.schemas import error_body
from server.api.service import TaskService
from server.config import Settings
from server.jobs import queue_from_settings
from server.jobs.base import TaskQueue
from server.keys import KeyRing
from server.media import FetchPolicy, MediaFetcher
from server.signing import Signer, load_or_create_secret
from server.storage import make_object_store
from server.storage.base import ObjectStore
from server.web import router as web_router

log = logging.getLogger(__name__)

# Starts background work on the app's loop once services exist; returns an awaitable shutdown.
WorkerFactory = Callable[[FastAPI, Services], Awaitable[Callable[[], Awaitable[None]]]]


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
    registry = registry if registry is not None else load_registry(settings.models)
    if keys is None:
        keys, _ = KeyRing.load_or_create(settings.api_keys, settings.data_dir)
    signer = Signer(load_or_create_secret(settings))
    store = store if store is not None else make_object_store(settings, signer)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task_queue = queue if queue is not None else queue_from_settings(settings)
        fetcher = MediaFetcher(FetchPolicy.from_settings(settings))
        upload_service = uploads.UploadService(store, signer, settings)
        svc = Services(settings, task_queue, store, registry, keys, signer, fetcher, upload_service)
        app.state.services = svc
        app.state.task_service = TaskService(settings, task_queue, store, registry, fetcher, upload_service)
        sweeper = asyncio.create_task(_sweep_forever(store))
        depth_refresher = asyncio.create_task(metrics_route.refresh_queue_depth_forever(task_queue))
        stop_worker = await worker_factory(app, svc) if worker_factory is not None else None
        try:
            yield
        finally:
            if stop_worker is not None:
                await stop_worker()
            sweeper.cancel()
            depth_refresher.cancel()
            await fetcher.aclose()
            await task_queue.close()

    # No trailing-slash redirects: Starlette builds their Location from the client's Host header.
    app = FastAPI(
        title="paddock",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.include_router(routes.router)
    app.include_router(uploads.router)
    app.include_router(files.router)
    app.include_router(routes.health)
    app.include_router(metrics_route.router)
    app.include_router(web_router)  # the playground at / (server/web)
    _install_error_handlers(app)
    install_openapi(app, list(registry))
    # add_middleware wraps what is there already: the last one added is the outermost.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings))
    app.add_middleware(ObservabilityMiddleware)
    return app


def body_limits(settings: Settings) -> Callable[[str], int | None]:
    """The body cap per path: the upload route takes files up to the upload limit (plus the form's
    other fields); everything else `PADDOCK_MAX_BODY_BYTES`."""
    upload_limit = settings.max_upload_mb * 1024 * 1024 + uploads.FORM_SLACK_BYTES

    def limit_for(path: str) -> int | None:
        return upload_limit if path == uploads.UPLOAD_PATH else settings.max_body_bytes

    return limit_for


def _install_error_handlers(app: FastAPI) -> None:
    """One error shape for everything, framework errors included (API.md §4)."""

    @app.exception_handler(DashScopeError)
    async def dashscope_error(request: Request, exc: DashScopeError) -> JSONResponse:
        return JSONResponse(error_body(request_id(request), exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid value')}" if where else "Invalid request."
        return JSONResponse(error_body(request_id(request), "InvalidParameter", message), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
        message = "url error, please check url!" if exc.status_code in (404, 405) else str(exc.detail)
        # exc.headers carries the 405's `Allow`.
        return JSONResponse(
            error_body(request_id(request), code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Only for errors outside UnhandledErrorMiddleware (in the outer middleware). Starlette
        # re-raises after this answer and the server then drops the connection: say so.
        log.exception("unhandled error", extra={"request_id": request_id(request)})
        body = error_body(request_id(request), "InternalError", INTERNAL_MESSAGE)
        return JSONResponse(body, status_code=500, headers={"Connection": "close"})


async def _sweep_forever(store: ObjectStore, interval_s: float = 300.0) -> None:
    """Delete expired objects of a local store now and then (S3 uses a lifecycle rule)."""
    sweep = getattr(store, "sweep", None)
    if sweep is None:
        return
    while True:
        try:
            removed = await asyncio.to_thread(sweep)
            if removed:
                log.info("swept %d expired objects", removed)
        except Exception:
            log.exception("object sweep failed")
        await asyncio.sleep(interval_s)
