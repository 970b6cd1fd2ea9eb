"""The OpenAPI description of the DashScope surface (API.md), complete enough to generate clients.

The routes parse bodies by hand (`schemas.parse_create`) so every rejection carries DashScope's
exact code, which leaves FastAPI nothing to infer a description from. The pydantic models here
describe the wire instead: request bodies, every response body, headers, the bearer-key
security scheme and every error response a route can send. `tests/server/api/test_openapi.py`
runs schemathesis against a live server from this description, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from server.api.schemas import MAX_SEED, RATIOS, RESOLUTIONS, MediaKind
from server.jobs.job import TaskStatus

SECURITY_SCHEME = "DashScopeApiKey"


class _Open(BaseModel):
    """Unknown keys are accepted and ignored (API.md §2: the SDK adds its own)."""

    model_config = ConfigDict(extra="allow")


class MediaEntry(_Open):
    type: MediaKind
    url: str = Field(description="http(s) URL, a base64 image data URI, or oss:// of an upload")


class CreateInput(_Open):
    prompt: str | None = Field(
        None, description="At most 5000 units (a CJK character counts 2); longer is cut, not refused"
    )
    media: list[MediaEntry] | None = Field(None, max_length=10)
    img_url: str | None = Field(None, description="Legacy first frame (i2v)")


class CreateParameters(_Open):
    resolution: Literal[tuple(RESOLUTIONS)] = "1080P"  # type: ignore[valid-type]
    ratio: Literal[RATIOS] = Field("16:9", description="t2v and r2v only")  # type: ignore[valid-type]
    duration: int = Field(5, ge=3, le=15, description="Seconds (not for video-edit)")
    watermark: bool = True
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Random when absent")
    audio_setting: Literal["auto", "origin"] = Field("auto", description="video-edit only")
    webhook_url: str | None = Field(
        None, description="paddock's own: POSTed the final state, signed per Standard Webhooks"
    )


class CreateTaskRequest(_Open):
    model: str = Field(examples=["happyhorse-1.0-i2v"])
    input: CreateInput
    parameters: CreateParameters | None = None


class CreateOutput(BaseModel):
    task_id: str
    task_status: Literal["PENDING"]


class CreateTaskResponse(BaseModel):
    request_id: str
    output: CreateOutput


class Progress(BaseModel):
    step: int
    total_steps: int


class TaskOutput(BaseModel):
    task_id: str
    task_status: TaskStatus
    submit_time: str | None = Field(None, description="YYYY-MM-DD HH:mm:ss.SSS, UTC+8")
    scheduled_time: str | None = None
    end_time: str | None = None
    progress: Progress | None = Field(None, description="RUNNING only")
    video_url: str | None = Field(None, description="SUCCEEDED only; valid until the task expires")
    orig_prompt: str | None = None
    code: str | None = Field(None, description="FAILED only")
    message: str | None = None


class Usage(BaseModel):
    duration: float
    input_video_duration: float
    output_video_duration: float
    video_count: int
    SR: int
    ratio: str | None = None


class TaskQueryResponse(BaseModel):
    request_id: str
    output: TaskOutput
    usage: Usage | None = Field(None, description="SUCCEEDED only")


class TaskListItem(BaseModel):
    task_id: str
    status: TaskStatus
    model_name: str
    request_id: str
    gmt_create: int | None = Field(description="epoch milliseconds")
    start_time: int | None
    end_time: int | None
    workspace_id: str | None


class TaskListResponse(BaseModel):
    request_id: str
    total: int
    total_page: int
    page_no: int
    page_size: int
    data: list[TaskListItem]
    tasks: list[TaskListItem] = Field(description="The same items (the v2 SDK reads this key)")


class RequestIdOnly(BaseModel):
    request_id: str


class UploadPolicy(BaseModel):
    policy: str
    signature: str
    upload_dir: str
    upload_host: str
    expire_in_seconds: int
    max_file_size_mb: int
    capacity_limit_mb: int
    oss_access_key_id: str
    x_oss_object_acl: str
    x_oss_forbid_overwrite: str


class UploadPolicyResponse(BaseModel):
    request_id: str
    data: UploadPolicy


class UploadResponse(BaseModel):
    request_id: str
    url: str = Field(description="oss://<key>, to use as a media URL")


class ErrorResponse(BaseModel):
    request_id: str
    code: str = Field(examples=["InvalidParameter"])
    message: str


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, bool]


ERROR_WHEN = {
    400: "InvalidParameter (and .DataInspection), BadRequest.EmptyModel/EmptyInput, InvalidURL, "
    "UnsupportedOperation: the message names the field or rule",
    401: "InvalidApiKey: no key, or an unknown one",
    403: "AccessDenied",
    404: "NotFound",
    409: "FileAlreadyExists (an upload), Conflict.IdempotencyKey (a key reused for another request)",
    413: "InvalidParameter: the request body is over the route's limit",
    429: "Throttling.RateQuota (the key's quota) or Throttling (the queue is full)",
    500: "InternalError",
    503: "ModelUnavailable, or (readyz) not ready",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the error statuses a route can answer."""
    return {s: {"model": ErrorResponse, "description": ERROR_WHEN[s]} for s in statuses}


def header(
    name: str, description: str, *, required: bool = False, enum: list[str] | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def query(name: str, kind: str, description: str, *, enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a JSON request body the route reads by hand."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


CREATE_DOC: dict[str, Any] = {
    **json_body(CreateTaskRequest),
    "parameters": [
        header("X-DashScope-Async", "`enable`: tasks are asynchronous", required=True, enum=["enable"]),
        header("X-DashScope-WorkSpace", "Recorded on the task; filters lists"),
        header("X-DashScope-OssResourceResolve", "`enable` to accept oss:// media URLs", enum=["enable"]),
        header("X-DashScope-DataInspection", "Accepted and ignored"),
        header("Idempotency-Key", "Retry-safe creates: the same key and body give the same task"),
    ],
}
WORKSPACE_DOC: dict[str, Any] = {"parameters": [header("X-DashScope-WorkSpace", "Filters the list")]}
UPLOAD_FORM_FIELDS = (
    "OSSAccessKeyId",
    "Signature",
    "policy",
    "key",
    "x-oss-object-acl",
    "x-oss-forbid-overwrite",
    "success_action_status",
    "x-oss-content-type",
)
UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["OSSAccessKeyId", "Signature", "policy", "key", "file"],
                    "properties": {
                        **{name: {"type": "string"} for name in UPLOAD_FORM_FIELDS},
                        "file": {"type": "string", "format": "binary", "description": "the last part"},
                    },
                }
            }
        },
    },
    "security": [],
}
# The models referenced by hand (`$ref`) rather than through a route's `responses`; an area adds
# its own with `install_openapi(extra_models=...)`.
EXTRA_MODELS: tuple[type[BaseModel], ...] = (CreateTaskRequest, TaskQueryResponse, ErrorResponse)


def _json_ref(model: type[BaseModel], description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# The task query is a plain Starlette route (tasks/routes.py: the poll path skips FastAPI's
# per-request machinery), so FastAPI does not describe it: this is its entry, written out.
QUERY_PATH = "/api/v1/tasks/{task_id}"
QUERY_DOC: dict[str, Any] = {
    "get": {
        "summary": "Query Task",
        "description": "HTTP 200 in every state; UNKNOWN for ids that do not exist, expired or belong to "
        "another key.",
        "operationId": "query_task_api_v1_tasks__task_id__get",
        "parameters": [{"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": _json_ref(TaskQueryResponse, "The task in any state"),
            "401": _json_ref(ErrorResponse, ERROR_WHEN[401]),
            "500": _json_ref(ErrorResponse, ERROR_WHEN[500]),
        },
    }
}


def install_openapi(app: FastAPI, models: list[str], extra_models: tuple[type[BaseModel], ...] = ()) -> None:
    """Serve the description at `/openapi.json`: FastAPI's, plus the security scheme, the
    hand-read request bodies and the served `models`, minus the 422 FastAPI assumes (validation
    errors are 400 here)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title="paddock: DashScope video synthesis",
            version=app.version,
            description="The DashScope asynchronous video-synthesis API (HappyHorse models), self-hosted, "
            "and the OpenAI-style Videos surface under /v1 over the same tasks.",
            routes=app.routes,
        )
        schema["paths"] = {QUERY_PATH: QUERY_DOC, **schema["paths"]}
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "description": "Bearer <API key>"}
        }
        for model in (*EXTRA_MODELS, *extra_models):
            defs = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.setdefault("schemas", {}).update(defs.pop("$defs", {}))
            components["schemas"][model.__name__] = defs
        components["schemas"]["CreateTaskRequest"]["properties"]["model"]["enum"] = sorted(models)
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                operation["responses"].pop("422", None)
                if "security" not in operation and path.startswith(("/api/", "/v1/")):
                    operation["security"] = [{SECURITY_SCHEME: []}]
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
