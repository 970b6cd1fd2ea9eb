"""Thin handlers for the task endpoints (API.md §1); the logic lives in `TaskService`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from model.registry import Endpoint
from server.api import schemas
from server.api.deps import authenticate, request_id, services, workspace
from server.api.errors import AccessDenied
from server.api.jsonbody import read_json
from server.api.service import CallContext, TaskService

router = APIRouter(prefix="/api/v1")

_SYNC_REFUSED = "current user api does not support synchronous calls"


def task_service(request: Request) -> TaskService:
    return request.app.state.task_service  # type: ignore[no-any-return]


async def _create(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    tenant = authenticate(request)
    if request.headers.get("x-dashscope-async", "").strip().lower() != "enable":
        raise AccessDenied(_SYNC_REFUSED)
    body = await read_json(await request.body())
    ctx = CallContext(
        tenant=tenant,
        request_id=request_id(request),
        workspace=workspace(request),
        oss_resolve=request.headers.get("x-dashscope-ossresourceresolve", "").strip().lower() == "enable",
    )
    record = await task_service(request).create(body, endpoint, ctx)
    return schemas.create_body(ctx.request_id, record)


@router.post("/services/aigc/video-generation/video-synthesis")
async def create_video_synthesis(request: Request) -> dict[str, Any]:
    """Create a task for any HappyHorse model (t2v, i2v, r2v, video-edit)."""
    return await _create(request, Endpoint.VIDEO_GENERATION)


@router.post("/services/aigc/image2video/video-synthesis")
async def create_image2video(request: Request) -> dict[str, Any]:
    """The legacy first+last-frame create path; other models get `url error`."""
    return await _create(request, Endpoint.IMAGE2VIDEO)


@router.get("/tasks/{task_id}")
async def query_task(task_id: str, request: Request) -> dict[str, Any]:
    """HTTP 200 in every state; UNKNOWN for ids that do not exist, expired or belong to others."""
    tenant = authenticate(request)
    rid = request_id(request)
    service = task_service(request)
    record = await service.get(task_id, tenant)
    if record is None:
        return schemas.unknown_task_body(rid, task_id)
    return schemas.task_body(rid, record, service.video_url(record))


@router.post("/tasks/{task_id}/cancel")
async def cancel_task(task_id: str, request: Request) -> dict[str, Any]:
    tenant = authenticate(request)
    await task_service(request).cancel(task_id, tenant)
    return {"request_id": request_id(request)}


@router.get("/tasks")
async def list_tasks(request: Request) -> JSONResponse:
    tenant = authenticate(request)
    records, total, page_no, page_size = await task_service(request).list_tasks(
        tenant, dict(request.query_params), workspace(request)
    )
    return JSONResponse(schemas.list_body(request_id(request), records, total, page_no, page_size))


health = APIRouter()


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The queue is reachable and, when this process runs a worker, the worker is ready."""
    svc = services(request)
    checks = {"queue": await _ping(svc.queue)}
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        checks["worker"] = worker.ready
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


async def _ping(queue: Any) -> bool:
    try:
        return bool(await queue.ping())
    except Exception:
        return False
