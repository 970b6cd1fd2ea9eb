"""Task records and job specs: the JSON that the facade, the queue and the workers share.

A `TaskRecord` is the source of truth for `GET /tasks/{id}`; its `spec` is everything a worker
needs to run the job. Times are epoch seconds (floats); the wire formats live in `api/schemas.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    """DashScope task states (API.md §3). `TRANSITIONS` says which follow which."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED)


# The lifecycle, in one place: the status changes a queue may make (both backends follow it; the
# contract suite checks every change it observes against it). A RUNNING task stays RUNNING when
# the janitor gives it its next attempt; `release` (graceful shutdown) puts it back to PENDING.
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.RUNNING, TaskStatus.PENDING, TaskStatus.SUCCEEDED, TaskStatus.FAILED}
    ),
    TaskStatus.SUCCEEDED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELED: frozenset(),
    TaskStatus.UNKNOWN: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A queue tried a status change `TRANSITIONS` does not allow (a bug, never client input)."""


def check_transition(old: TaskStatus, new: TaskStatus) -> None:
    """Raise `InvalidTransition` unless `old -> new` is in `TRANSITIONS`."""
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"{old.value} -> {new.value} is not a task transition")


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
    code: str | None = None
    message: str | None = None
    progress_step: int | None = None
    progress_total: int | None = None
    # Where the final state is announced (the create's `webhook_url`, else the key's), if anywhere.
    webhook_url: str | None = None
    # The task whose video this one edits (an OpenAI-surface remix).
    remixed_from: str | None = None

    def to_json(self) -> str:
        body = asdict(self)
        body["status"] = self.status.value
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> TaskRecord:
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> TaskRecord:
        """The record of a decoded `to_json` body (which it may change in place)."""
        body["status"] = TaskStatus(body["status"])
        body["spec"] = JobSpec.from_dict(body["spec"])
        return cls(**body)
