"""Response bodies (API.md §3–§4): plain dicts built here, so the field names sit in one place."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from model.registry import TaskFamily
from server.api.schemas.create import BEIJING, RESOLUTIONS
from server.api.schemas.listing import TaskPage
from server.jobs.job import JobSpec, TaskRecord, TaskStatus

BEIJING_OFFSET_S = BEIJING.utcoffset(None).total_seconds()


def format_time(ts: float | None) -> str | None:
    """`YYYY-MM-DD HH:mm:ss.SSS` in UTC+8, as DashScope reports task times: what
    `datetime.fromtimestamp(ts, BEIJING)` prints, computed from the epoch directly, which takes
    half the time. Every poll formats up to three of these."""
    if ts is None:
        return None
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1_000_000)  # half to even, as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole + BEIJING_OFFSET_S))
    return f"{local}.{micros // 1000:03d}"


def epoch_ms(ts: float | None) -> int | None:
    return None if ts is None else int(ts * 1000)


def create_body(request_id: str, record: TaskRecord) -> dict[str, Any]:
    return {"request_id": request_id, "output": {"task_id": record.task_id, "task_status": "PENDING"}}


def unknown_task_body(request_id: str, task_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "output": {"task_id": task_id, "task_status": TaskStatus.UNKNOWN.value}}


def task_body(request_id: str, record: TaskRecord, video_url: str | None) -> dict[str, Any]:
    """The query response for one task in any state (API.md §3)."""
    output: dict[str, Any] = {"task_id": record.task_id, "task_status": record.status.value}
    output["submit_time"] = format_time(record.submit_time)
    if record.scheduled_time is not None:
        output["scheduled_time"] = format_time(record.scheduled_time)
    if record.status.is_final:
        output["end_time"] = format_time(record.end_time)
    body: dict[str, Any] = {"request_id": request_id, "output": output}
    if record.status == TaskStatus.RUNNING and record.progress_total:
        output["progress"] = {"step": record.progress_step or 0, "total_steps": record.progress_total}
    elif record.status == TaskStatus.SUCCEEDED:
        output["video_url"] = video_url
        output["orig_prompt"] = record.orig_prompt or ""
        body["usage"] = usage_body(record.spec)
    elif record.status == TaskStatus.FAILED:
        output["code"] = record.code or "InternalError"
        output["message"] = record.message or ""
    return body


def list_item(record: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": record.task_id,
        "status": record.status.value,
        "model_name": record.model,
        "request_id": record.request_id,
        "gmt_create": epoch_ms(record.submit_time),
        "start_time": epoch_ms(record.scheduled_time),
        "end_time": epoch_ms(record.end_time),
        "workspace_id": record.workspace,
    }


def list_body(request_id: str, page: TaskPage) -> dict[str, Any]:
    """The list response (API.md §3): a flat body, items under both `data` and `tasks`."""
    items = [list_item(r) for r in page.records]
    return {
        "request_id": request_id,
        "total": page.total,
        "total_page": math.ceil(page.total / page.page_size) if page.total else 0,
        "page_no": page.page_no,
        "page_size": page.page_size,
        "data": items,
        "tasks": items,
    }


def usage_body(spec: JobSpec) -> dict[str, Any]:
    """The `usage` object of a SUCCEEDED query (API.md §3): edit durations are floats and
    `duration` is input + output seconds; i2v and edit carry no ratio. Everything it needs is
    fixed at submit time (the output's length follows the request, or the edit source)."""
    sr = RESOLUTIONS[spec.resolution]
    if spec.family == TaskFamily.VIDEO_EDIT.value:
        out_s, in_s = round(spec.duration_s, 3), round(spec.input_video_duration_s, 3)
        return {
            "duration": round(in_s + out_s, 3),
            "input_video_duration": in_s,
            "output_video_duration": out_s,
            "video_count": 1,
            "SR": sr,
        }
    seconds = int(spec.duration_s)
    usage: dict[str, Any] = {
        "duration": seconds,
        "input_video_duration": 0,
        "output_video_duration": seconds,
        "video_count": 1,
        "SR": sr,
    }
    if spec.ratio is not None:
        usage["ratio"] = spec.ratio
    return usage


def error_body(request_id: str, code: str, message: str) -> dict[str, Any]:
    return {"request_id": request_id, "code": code, "message": message}


def now() -> float:
    return datetime.now(UTC).timestamp()
