"""Thin handlers for the task endpoints (API.md §1); the logic lives in `TaskService`."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from model.registry import Endpoint
from server.api import openapi, schemas
from server.api.deps import authenticate, idempotency_key, request_id, workspace
from server.api.jsonbody import read_json
from server.api.middleware import TemplatedRoute
from server.api.tasks.service import CallContext, TaskService
from server.errors import AccessDenied
from server.jobs.job import TaskStatus

router = APIRouter(prefix="/api/v1")


def tasks(request: Request) -> TaskService:
    """The tasks area's serving object."""
    return cast(TaskService, request.app.state.tasks)


_SYNC_REFUSED = "current user api does not support synchronous calls"


async def _create(request: Request, endpoint: Endpoint) -> JSONResponse:
    tenant = authenticate(request)
    if request.headers.get("x-dashscope-async", "").strip().lower() != "enable":
        raise AccessDenied(_SYNC_REFUSED)
    key = idempotency_key(request)
    body = await read_json(await request.body())
    ctx = CallContext(
        tenant=tenant,
        request_id=request_id(request),
        workspace=workspace(request),
        oss_resolve=request.headers.get("x-dashscope-ossresourceresolve", "").strip().lower() == "enable",
        idempotency_key=key,
    )
    made = await tasks(request).create(body, endpoint, ctx)
    # A replay answers what the first call answered (its task, PENDING), and says it is one.
    headers = {"Idempotent-Replayed": "true"} if made.replayed else None
    return JSONResponse(schemas.create_body(ctx.request_id, made.record), headers=headers)


_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": openapi.CreateTaskResponse},
    **openapi.errors(400, 401, 403, 409, 413, 429, 500, 503),
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


@router.post(
    "/services/aigc/video-generation/video-synthesis",
    response_model=None,
    responses=_CREATE_RESPONSES,
    openapi_extra=openapi.CREATE_DOC,
)
async def create_video_synthesis(request: Request) -> JSONResponse:
    """Create a task for any HappyHorse model (t2v, i2v, r2v, video-edit)."""
    return await _create(request, Endpoint.VIDEO_GENERATION)


@router.post(
    "/services/aigc/image2video/video-synthesis",
    response_model=None,
    responses=_CREATE_RESPONSES,
    openapi_extra=openapi.CREATE_DOC,
)
async def create_image2video(request: Request) -> JSONResponse:
    """The legacy first+last-frame create path; other models get `url error`."""
    return await _create(request, Endpoint.IMAGE2VIDEO)


async def query_task(request: Request) -> JSONResponse:
    """`GET /api/v1/tasks/{task_id}`: HTTP 200 in every state; UNKNOWN for ids that do not exist,
    expired or belong to others.

    The hottest route (every client polls it), so it is a plain Starlette route (`QUERY_ROUTE`)
    that `middleware.HotRouteMiddleware` answers ahead of the framework's routing: no dependency
    solving or response encoding pass per poll. Its OpenAPI entry is written out in
    `openapi.QUERY_DOC`."""
    tenant = authenticate(request)
    rid = request_id(request)
    service = tasks(request)
    task_id = str(request.path_params["task_id"])
    record = await service.get(task_id, tenant)
    if record is None:
        return JSONResponse(schemas.unknown_task_body(rid, task_id))
    return JSONResponse(schemas.task_body(rid, record, service.video_url(record)))


QUERY_ROUTE = TemplatedRoute("/api/v1/tasks/{task_id}", query_task, methods=["GET"], name="query_task")


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=None,
    responses={200: {"model": openapi.RequestIdOnly}, **openapi.errors(400, 401, 413, 500)},
)
async def cancel_task(task_id: str, request: Request) -> dict[str, Any]:
    """Cancel a PENDING task; anything else is 400 UnsupportedOperation."""
    tenant = authenticate(request)
    await tasks(request).cancel(task_id, tenant)
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
    query = schemas.parse_list_query(request.query_params, workspace(request), schemas.now())
    page = await tasks(request).list_tasks(tenant, query)
    return JSONResponse(schemas.list_body(request_id(request), page))
