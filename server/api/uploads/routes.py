"""The upload routes: `GET /api/v1/uploads?action=getPolicy` and the multipart POST (API.md §5)."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from server.api import openapi
from server.api.deps import authenticate, request_id
from server.api.uploads.form import read_upload_form
from server.api.uploads.service import OSS_SCHEME, UPLOAD_PATH, UploadService
from server.errors import InvalidParameter, empty_model

router = APIRouter()


def uploads(request: Request) -> UploadService:
    """The uploads area's serving object."""
    return cast(UploadService, request.app.state.uploads)


@router.get(
    "/api/v1/uploads",
    response_model=None,
    responses={200: {"model": openapi.UploadPolicyResponse}, **openapi.errors(400, 401, 500)},
)
def get_policy(request: Request, action: str = "", model: str = "") -> dict[str, Any]:
    """`?action=getPolicy&model=M`: `{"request_id", "data": {policy...}}` for the caller's tenant."""
    tenant = authenticate(request)
    if action != "getPolicy":
        raise InvalidParameter(f"Unsupported action {action!r}: only getPolicy is supported.")
    if not model:
        raise empty_model()
    return {"request_id": request_id(request), "data": uploads(request).issue_policy(tenant, model)}


@router.post(
    UPLOAD_PATH,
    response_model=None,
    responses={
        200: {"model": openapi.UploadResponse},
        201: {"model": openapi.UploadResponse},
        204: {"description": "Stored (success_action_status=204)"},
        **openapi.errors(400, 403, 409, 413, 500),
    },
    openapi_extra=openapi.UPLOAD_DOC,
)
async def upload(request: Request) -> Response:
    """The SDK's multipart upload (no Authorization: the policy signature is the credential).

    The form is read as it streams: a forged, expired or foreign form is refused when the file
    part begins, before any of the file is read (`form.read_upload_form`)."""
    service = uploads(request)
    started = service.now()

    def admit(fields: dict[str, str]) -> int:
        return service.verify_form(fields, started).max_bytes

    content_type = request.headers.get("content-type", "")
    async with read_upload_form(request.stream(), content_type, admit=admit) as form:
        key = await run_in_threadpool(service.accept, form.fields, form.path, form.size, now=started)
    return _upload_response(request, key, form.fields.get("success_action_status", ""))


def _upload_response(request: Request, key: str, status: str) -> Response:
    if status == "204":
        return Response(status_code=204)
    code = 201 if status == "201" else 200
    return JSONResponse({"request_id": request_id(request), "url": OSS_SCHEME + key}, status_code=code)
