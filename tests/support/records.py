"""Task records for queue tests."""

from __future__ import annotations

import itertools
import time

from server.jobs.job import JobSpec, MediaRef, TaskRecord

_ids = itertools.count()


def record(
    *,
    tenant: str = "t1",
    model: str = "happyhorse-i2v",
    workspace: str | None = None,
    submit_time: float | None = None,
    task_id: str | None = None,
) -> TaskRecord:
    spec = JobSpec(
        model=model,
        family="i2v",
        prompt="a horse at dawn",
        width=832,
        height=480,
        duration_s=5.0,
        seed=2**31 + 7,
        watermark=False,
        resolution="480P",
        ratio=None,
        media=(
            MediaRef(type="first_frame", key="in/abc.png", content_type="image/png", width=832, height=480),
        ),
    )
    return TaskRecord(
        task_id=task_id or f"task-{next(_ids)}",
        request_id=f"req-{next(_ids)}",
        tenant=tenant,
        model=model,
        spec=spec,
        workspace=workspace,
        submit_time=time.time() if submit_time is None else submit_time,
    )
