"""The OpenAI Videos wire format: the `video` object, the list page, the deletion answer and the
error body, as plain dicts built from task records, and the pydantic models that describe them in
/openapi.json (the routes build answers by hand, like the DashScope ones).

Statuses: PENDING is `queued`, RUNNING `in_progress`, SUCCEEDED `completed`; FAILED and CANCELED
are `failed` (OpenAI has no canceled state), with the reason in `error`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.jobs.job import TaskRecord, TaskStatus

OPENAI_STATUS = {
    TaskStatus.PENDING: "queued",
    TaskStatus.RUNNING: "in_progress",
    TaskStatus.SUCCEEDED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELED: "failed",
}
CANCELED_ERROR = {"code": "canceled", "message": "The task was canceled before it started."}


def progress_percent(record: TaskRecord) -> int:
    """0 until it runs, the share of denoising steps done while it runs (below 100: encoding and
    upload follow the last step), 100 once completed."""
    if record.status == TaskStatus.SUCCEEDED:
        return 100
    if record.status == TaskStatus.RUNNING and record.progress_total:
        return min(99, 100 * (record.progress_step or 0) // record.progress_total)
    return 0


def video_object(record: TaskRecord, ttl_s: int) -> dict[str, Any]:
    """The `video` object of a task, whichever surface created it."""
    error: dict[str, str] | None = None
    if record.status == TaskStatus.FAILED:
        error = {"code": record.code or "InternalError", "message": record.message or ""}
    elif record.status == TaskStatus.CANCELED:
        error = dict(CANCELED_ERROR)
    final = record.status.is_final and record.end_time is not None
    return {
        "id": record.task_id,
        "object": "video",
        "model": record.model,
        "status": OPENAI_STATUS[record.status],
        "progress": progress_percent(record),
        "created_at": int(record.submit_time),
        "completed_at": int(record.end_time) if final and record.end_time is not None else None,
        "expires_at": int(record.submit_time + ttl_s),
        "prompt": record.spec.prompt,
        "seconds": f"{record.spec.duration_s:g}",
        "size": f"{record.spec.width}x{record.spec.height}",
        "remixed_from_video_id": record.remixed_from,
        "error": error,
    }


def list_body(records: list[TaskRecord], has_more: bool, ttl_s: int) -> dict[str, Any]:
    """One cursor page: `after=last_id` asks for the next."""
    return {
        "object": "list",
        "data": [video_object(r, ttl_s) for r in records],
        "first_id": records[0].task_id if records else None,
        "last_id": records[-1].task_id if records else None,
        "has_more": has_more,
    }


def deleted_body(video_id: str) -> dict[str, Any]:
    return {"id": video_id, "object": "video.deleted", "deleted": True}


# -- the description in /openapi.json ---------------------------------------------------------------
class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    id: str
    object: Literal["video"]
    model: str = Field(description="The registry name of the model that makes it")
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None
    expires_at: int
    prompt: str | None
    seconds: str
    size: str = Field(description="WIDTHxHEIGHT of the delivered video")
    remixed_from_video_id: str | None
    error: VideoError | None


class VideoList(BaseModel):
    object: Literal["list"]
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"]
    deleted: bool


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


class ImageReference(BaseModel):
    model_config = ConfigDict(extra="allow")
    image_url: str | None = Field(None, description="http(s) URL or a base64 image data URI")


class CreateVideoRequest(BaseModel):
    """The JSON create body; the multipart form has the same fields, `input_reference` a file."""

    model_config = ConfigDict(extra="allow")
    prompt: str
    model: str | None = Field(None, description="An alias (sora-2, ...) or a registry model name")
    seconds: str | None = Field(None, description="3 to 15 (default 4)")
    size: str | None = Field(None, description="WIDTHxHEIGHT (default 720x1280)")
    input_reference: ImageReference | None = None
    webhook_url: str | None = Field(None, description="paddock's own: where the final state is POSTed")
    seed: int | None = None
    watermark: bool | None = None


class RemixVideoRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt: str
    webhook_url: str | None = None
