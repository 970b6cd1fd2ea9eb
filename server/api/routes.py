"""Thin handlers for the task endpoints (API.md §1); the logic lives in `TaskService`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from model.registry import Endpoint
from server.api import openapi, schemas
from server.api.deps import authenticate, request_id, services, workspace
from server.api.errors import AccessDenied
from server.api.jsonbody import read_json
from server.api.service import CallContext, TaskService
from server.jobs.job import TaskStatus

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


_CREATE = {
    "response_model": None,
    "responses": {
        200: {"model": openapi.CreateTaskResponse},
        **openapi.errors(400, 401, 403, 413, 429, 500, 503),
    },
    "openapi_extra": openapi.CREATE_DOC,
}
_LIST_QUERY = [
    openapi.query("page_no", "integer", "1-based page number (default 1)"),
    openapi.query("page_size", "integer", "1 to 100 (default 10)"),
    openapi.query("status", "string", "Only tasks in this state", enum=[s.value for s in TaskStatus]),
    openapi.query("model_name", "string", "Only tasks of this model"),
    openapi.query("task_id", "string", "Only this task"),
    openapi.query("start_time", "string", "YYYYMMDDhhmmss, UTC+8 (default: end_time - 24 h)"),
    openapi.query("end_time", "string", "YYYYMMDDhhmmss, UTC+8 (default: now), within 24 h of start_time"),
]


@router.post("/services/aigc/video-generation/video-synthesis", **_CREATE)
async def create_video_synthesis(request: Request) -> dict[str, Any]:
    """Create a task for any HappyHorse model (t2v, i2v, r2v, video-edit)."""
    return await _create(request, Endpoint.VIDEO_GENERATION)


@router.post("/services/aigc/image2video/video-synthesis", **_CREATE)
async def create_image2video(request: Request) -> dict[str, Any]:
    """The legacy first+last-frame create path; other models get `url error`."""
    return await _create(request, Endpoint.IMAGE2VIDEO)


@router.get(
    "/tasks/{task_id}",
    response_model=None,
    responses={200: {"model": openapi.TaskQueryResponse}, **openapi.errors(401, 500)},
)
async def query_task(task_id: str, request: Request) -> dict[str, Any]:
    """HTTP 200 in every state; UNKNOWN for ids that do not exist, expired or belong to others."""
    tenant = authenticate(request)
    rid = request_id(request)
    service = task_service(request)
    record = await service.get(task_id, tenant)
    if record is None:
        return schemas.unknown_task_body(rid, task_id)
    return schemas.task_body(rid, record, service.video_url(record))


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=None,
    responses={200: {"model": openapi.RequestIdOnly}, **openapi.errors(400, 401, 413, 500)},
)
async def cancel_task(task_id: str, request: Request) -> dict[str, Any]:
    """Cancel a PENDING task; anything else is 400 UnsupportedOperation."""
    tenant = authenticate(request)
    await task_service(request).cancel(task_id, tenant)
    return {"request_id": request_id(request)}


@router.get(
    "/tasks",
    response_model=None,
    responses={200: {"model": openapi.TaskListResponse}, **openapi.errors(400, 401, 500)},
    openapi_extra={"parameters": [*_LIST_QUERY, *openapi.WORKSPACE_DOC["parameters"]]},
)
async def list_tasks(request: Request) -> JSONResponse:
    """One page of the key's tasks, newest first (API.md §3 list)."""
    tenant = authenticate(request)
    records, total, page_no, page_size = await task_service(request).list_tasks(
        tenant, dict(request.query_params), workspace(request)
    )
    return JSONResponse(schemas.list_body(request_id(request), records, total, page_no, page_size))


health = APIRouter()


@health.get("/healthz", response_model=None, responses={200: {"model": openapi.HealthResponse}})
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get(
    "/readyz",
    response_model=None,
    responses={200: {"model": openapi.ReadyResponse}, 503: {"model": openapi.ReadyResponse}},
)
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
