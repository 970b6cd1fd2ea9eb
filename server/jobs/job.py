"""Task records and job specs: the JSON that the facade, the queue and the workers share.

A `TaskRecord` is the source of truth for `GET /tasks/{id}`; its `spec` is everything a worker
needs to run the job. Times are epoch seconds (floats); the wire formats live in `api/schemas.py`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    """DashScope task states (API.md §3)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED)


@dataclass(frozen=True)
class MediaRef:
    """One validated input, stored in the object store under `key` by the facade."""

    type: str  # first_frame | reference_image | video
    key: str
    content_type: str
    width: int = 0
    height: int = 0
    duration_s: float = 0.0


@dataclass(frozen=True)
class JobSpec:
    """A validated request, with every default and random choice resolved at submit time."""

    model: str
    family: str
    prompt: str
    width: int
    height: int
    duration_s: float
    seed: int
    watermark: bool
    resolution: str
    ratio: str | None
    media: tuple[MediaRef, ...] = ()
    audio_setting: str = "auto"
    input_video_duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def usage(self) -> dict[str, Any]:
        """The `usage` object of a SUCCEEDED query (API.md §3): edit durations are floats and
        `duration` is input + output seconds; i2v and edit carry no ratio."""
        sr = 1080 if self.resolution == "1080P" else 720
        if self.family == "video-edit":
            out_s, in_s = round(self.duration_s, 3), round(self.input_video_duration_s, 3)
            return {
                "duration": round(in_s + out_s, 3),
                "input_video_duration": in_s,
                "output_video_duration": out_s,
                "video_count": 1,
                "SR": sr,
            }
        seconds = int(self.duration_s)
        usage: dict[str, Any] = {
            "duration": seconds,
            "input_video_duration": 0,
            "output_video_duration": seconds,
            "video_count": 1,
            "SR": sr,
        }
        if self.ratio is not None:
            usage["ratio"] = self.ratio
        return usage

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        body = dict(data)
        body["media"] = tuple(MediaRef(**m) for m in body.get("media", ()))
        return cls(**body)


@dataclass
class TaskRecord:
    """One task as stored. `attempt` fences worker commits (DESIGN.md §3)."""

    task_id: str
    request_id: str
    tenant: str
    model: str
    spec: JobSpec
    status: TaskStatus = TaskStatus.PENDING
    workspace: str | None = None
    submit_time: float = 0.0
    scheduled_time: float | None = None
    end_time: float | None = None
    attempt: int = 0
    orig_prompt: str | None = None
    result_key: str | None = None
    usage: dict[str, Any] | None = None
    code: str | None = None
    message: str | None = None
    progress_step: int | None = None
    progress_total: int | None = None

    def to_json(self) -> str:
        body = asdict(self)
        body["status"] = self.status.value
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> TaskRecord:
        body = json.loads(raw)
        body["status"] = TaskStatus(body["status"])
        body["spec"] = JobSpec.from_dict(body["spec"])
        return cls(**body)
