"""Thin handlers for the OpenAI-style Videos surface under /v1 (what the `openai` SDK's
`client.videos` calls); the logic lives in `VideosService`, errors are OpenAI's shape
(`server.api.errorbody`), authentication is the same `Authorization: Bearer <key>`."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from server.api import openapi
from server.api.deps import authenticate, idempotency_key, request_id
from server.api.jsonbody import read_json
from server.api.openai import translate, wire
from server.api.openai.service import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, VideosService
from server.api.tasks.service import CallContext, Submission
from server.errors import InvalidParameter, NotFound
from server.storage.base import ObjectNotFound
from server.storage.local import LocalObjectStore

router = APIRouter(prefix="/v1")

# Form parts a create may carry: the SDK's fields plus paddock's extras; one file at most.
MAX_FORM_FIELDS = 32


def videos(request: Request) -> VideosService:
    """The OpenAI surface's serving object."""
    return cast(VideosService, request.app.state.videos)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": wire.OpenAIError, "description": openapi.ERROR_WHEN[s]} for s in statuses}


_IDEMPOTENCY = openapi.header(
    "Idempotency-Key", "Retry-safe creates: the same key and request give the same video"
)
_CREATE_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateVideoRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": {
                        **{
                            n: {"type": "string"}
                            for n in ("prompt", "model", "seconds", "size", "webhook_url")
                        },
                        "input_reference": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
    },
    "parameters": [_IDEMPOTENCY],
}
_REMIX_DOC: dict[str, Any] = {**openapi.json_body(wire.RemixVideoRequest), "parameters": [_IDEMPOTENCY]}
_LIST_QUERY = [
    openapi.query("after", "string", "The last video id of the previous page"),
    openapi.query("limit", "integer", f"1 to {MAX_LIST_LIMIT} (default {DEFAULT_LIST_LIMIT})"),
    openapi.query("order", "string", "By creation time (default desc)", enum=["asc", "desc"]),
]
_CONTENT_TYPES = ("video/mp4", "image/webp", "image/jpeg")
_CONTENT_DOC: dict[str, Any] = {
    "parameters": [
        openapi.query("variant", "string", "default video", enum=["video", "thumbnail", "spritesheet"])
    ],
    "responses": {
        "200": {
            "description": "The MP4, a WebP thumbnail or a JPEG spritesheet",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in _CONTENT_TYPES},
        }
    },
}


def _answer(request: Request, made: Submission) -> JSONResponse:
    body = wire.video_object(made.record, videos(request).ttl_s)
    return JSONResponse(body, headers={"Idempotent-Replayed": "true"} if made.replayed else None)


@router.post(
    "/videos",
    response_model=None,
    responses={200: {"model": wire.Video}, **_errors(400, 401, 403, 409, 413, 429, 500, 503)},
    openapi_extra=_CREATE_DOC,
)
async def create_video(request: Request) -> JSONResponse:
    """Create a video from a prompt and, optionally, an `input_reference` image (JSON or multipart)."""
    ctx = CallContext(authenticate(request), request_id(request), idempotency_key=idempotency_key(request))
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
        upload = form.get("input_reference")
        fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
        video_request = translate.from_form(fields, has_file=isinstance(upload, UploadFile))
        if isinstance(upload, UploadFile):
            ctx = dataclasses.replace(ctx, attached={translate.REFERENCE_URL: await upload.read()})
    else:
        video_request = translate.from_json(await read_json(await request.body()))
    return _answer(request, await videos(request).create(video_request, ctx))


@router.get(
    "/videos",
    response_model=None,
    responses={200: {"model": wire.VideoList}, **_errors(400, 401, 500)},
    openapi_extra={"parameters": _LIST_QUERY},
)
async def list_videos(request: Request) -> dict[str, Any]:
    """A cursor page of the key's videos (`after`, `limit`, `order`)."""
    tenant = authenticate(request)
    query = request.query_params
    limit = _limit(query.get("limit"))
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidParameter(f"order must be asc or desc, got {order!r}.", param="order")
    service = videos(request)
    after = query.get("after") or None
    records, has_more = await service.list_videos(
        tenant, after=after, limit=limit, oldest_first=order == "asc"
    )
    return wire.list_body(records, has_more, service.ttl_s)


@router.get(
    "/videos/{video_id}",
    response_model=None,
    responses={200: {"model": wire.Video}, **_errors(401, 404, 500)},
)
async def retrieve_video(video_id: str, request: Request) -> dict[str, Any]:
    """The video's current state."""
    service = videos(request)
    return wire.video_object(await service.retrieve(video_id, authenticate(request)), service.ttl_s)


@router.delete(
    "/videos/{video_id}",
    response_model=None,
    responses={200: {"model": wire.VideoDeleted}, **_errors(400, 401, 404, 500)},
)
async def delete_video(video_id: str, request: Request) -> dict[str, Any]:
    """Delete a finished (or still queued) video and everything stored for it."""
    await videos(request).delete(video_id, authenticate(request))
    return wire.deleted_body(video_id)


@router.post(
    "/videos/{video_id}/remix",
    response_model=None,
    responses={200: {"model": wire.Video}, **_errors(400, 401, 403, 404, 409, 413, 429, 500, 503)},
    openapi_extra=_REMIX_DOC,
)
async def remix_video(video_id: str, request: Request) -> JSONResponse:
    """A new video: the completed one edited after a new prompt."""
    ctx = CallContext(authenticate(request), request_id(request), idempotency_key=idempotency_key(request))
    body = await read_json(await request.body())
    return _answer(request, await videos(request).remix(video_id, body, ctx))


@router.get(
    "/videos/{video_id}/content",
    response_model=None,
    responses=_errors(400, 401, 404, 500),
    openapi_extra=_CONTENT_DOC,
)
async def download_video_content(video_id: str, request: Request) -> Response:
    """The MP4 (`variant=video`), a thumbnail or a spritesheet of a completed video."""
    tenant = authenticate(request)
    service = videos(request)
    content = await service.content(video_id, tenant, request.query_params.get("variant") or "video")
    store = service.tasks.store
    if not isinstance(store, LocalObjectStore):
        # S3: the client fetches the object from a presigned URL (the SDK follows redirects).
        return RedirectResponse(store.url(content.key, content.expires_at), status_code=307)
    try:
        path, _ = store.open_for_serving(content.key)
    except (ObjectNotFound, ValueError) as exc:
        raise NotFound("The video's content has expired.") from exc
    return FileResponse(path, media_type=content.content_type)


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIST_LIMIT
    if not translate.is_decimal(raw) or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise InvalidParameter(
            f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {raw!r}.", param="limit"
        )
    return int(raw)
