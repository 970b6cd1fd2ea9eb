"""`GET /metrics` after real tasks that SUCCEEDED, FAILED and were CANCELED (no metric is mocked).

The app runs in-process with a real JobRunner and the tiny models. `happyhorse-1.1-i2v` points at
an empty checkpoint folder, so its job fails for real at load time (FAILED InternalError.Algo).
Each app has its own registry; assertions are still deltas between two scrapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server import metrics
from tests.support.facade import headers
from tests.support.worker_app import BROKEN, CREATE, GOOD, Scrape, scrape, submit, wait_final, worker_app


async def run_three_tasks(tmp_path: Path) -> tuple[Scrape, Scrape, dict[str, Any]]:
    """One CANCELED, one SUCCEEDED and one FAILED task; the scrapes before and after."""
    async with worker_app(tmp_path) as (client, gate):
        before = await scrape(client)
        canceled = await submit(client, GOOD)
        assert (await client.post(f"/api/v1/tasks/{canceled}/cancel", headers=headers())).status_code == 200
        pending = await scrape(client)  # the worker is gated: both counts are exact
        good, broken = await submit(client, GOOD), await submit(client, BROKEN)
        depth = await scrape(client)
        gate.set()
        outputs = {"good": await wait_final(client, good), "broken": await wait_final(client, broken)}
        video = await client.get(outputs["good"]["video_url"].removeprefix("http://testserver"))
        assert (await client.get("/no/such/path")).status_code == 404
        after = await scrape(client)
    info = {"outputs": outputs, "video_bytes": len(video.content), "pending": pending, "depth": depth}
    return before, after, info


def test_table_names_follow_the_rules() -> None:
    for spec in metrics.METRICS:
        assert spec.name.startswith("paddock_")
        assert (spec.kind == "counter") == spec.name.endswith("_total"), spec.name
        assert (spec.kind == "histogram") == (spec.buckets is not None), spec.name
        assert not {"task_id", "path", "url", "request_id"} & set(spec.labels), spec.name
    latency = {s.name: s.buckets for s in metrics.METRICS if s.name.endswith("_seconds") and s.buckets}
    assert max(latency["paddock_e2e_seconds"] or ()) >= 3 * 3600  # minutes-long jobs fit


async def test_metrics_after_succeeded_failed_canceled(tmp_path: Path) -> None:
    before, after, info = await run_three_tasks(tmp_path)
    check_job_metrics(before, after, info)
    check_types_and_build_info(after)
    check_queue_depth(after, info)
    check_http_metrics(before, after, info)


def check_job_metrics(before: Scrape, after: Scrape, info: dict[str, Any]) -> None:
    outputs = info["outputs"]
    assert outputs["good"]["task_status"] == "SUCCEEDED"
    assert outputs["broken"]["task_status"] == "FAILED"
    assert outputs["broken"]["code"] == "InternalError.Algo"

    def delta(name: str, **labels: str) -> float:
        return after.get(name, **labels) - before.get(name, **labels)

    assert delta("paddock_jobs_total", model=GOOD, status="CANCELED", code="") == 1
    assert delta("paddock_jobs_total", model=GOOD, status="SUCCEEDED", code="") == 1
    assert delta("paddock_jobs_total", model=BROKEN, status="FAILED", code="InternalError.Algo") == 1
    assert after.total("paddock_jobs_total") - before.total("paddock_jobs_total") == 3
    assert delta("paddock_e2e_seconds_count", model=GOOD) == 1
    assert delta("paddock_e2e_seconds_count", model=BROKEN) == 0  # e2e is submit → SUCCEEDED
    assert delta("paddock_queue_wait_seconds_count") == 2  # the two claimed jobs, not the canceled one
    assert delta("paddock_upload_bytes_total") == info["video_bytes"] > 0
    for phase in ("load", "decode", "generate", "resample", "watermark", "audio", "encode", "upload"):
        assert delta("paddock_job_phase_seconds_count", model=GOOD, phase=phase) == 1, phase
    # GPU-seconds are generate wall time x devices (1 CPU device here), exactly.
    generate_s = delta("paddock_job_phase_seconds_sum", model=GOOD, phase="generate")
    assert generate_s > 0
    assert delta("paddock_gpu_seconds_total", model=GOOD) == pytest.approx(generate_s)
    assert delta("paddock_gpu_seconds_total", model=BROKEN) == 0
    assert after.get("paddock_jobs_running") == 0
    assert after.get("paddock_workers_ready") >= 1
    # The engine's steps, recorded on its real path: the good job's denoising steps at least.
    steps = sum(after.get("paddock_step_duration_seconds_count", model=m) for m in ("magihuman", GOOD))
    steps -= sum(before.get("paddock_step_duration_seconds_count", model=m) for m in ("magihuman", GOOD))
    assert steps >= 8
    assert delta("paddock_batch_size_count") == steps


def check_types_and_build_info(after: Scrape) -> None:
    expected = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}
    for spec in metrics.METRICS:
        family = spec.name.removesuffix("_total")  # the parser names counter families without it
        assert after.types.get(family) == expected[spec.kind], spec.name
    assert after.total("paddock_build_info") == 1


def check_queue_depth(after: Scrape, info: dict[str, Any]) -> None:
    assert info["pending"].get("paddock_queue_depth") == 0  # the canceled job left the queue
    assert info["depth"].get("paddock_queue_depth") == 2  # two submitted, the worker still gated
    assert after.get("paddock_queue_depth") == 0


def check_http_metrics(before: Scrape, after: Scrape, info: dict[str, Any]) -> None:
    """Labels are route templates (`unmatched` for 404s), never a task id."""

    def delta(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    assert delta("paddock_http_requests_total", method="POST", route=CREATE, status="200") == 3
    assert delta("paddock_http_requests_total", method="POST", route="/api/v1/tasks/{task_id}/cancel") == 1
    assert (
        delta("paddock_http_requests_total", method="GET", route="/api/v1/tasks/{task_id}", status="200") >= 2
    )
    assert delta("paddock_http_requests_total", method="GET", route="/files/{key:path}", status="200") == 1
    assert delta("paddock_http_requests_total", route="unmatched", status="404") == 1
    assert delta("paddock_http_request_duration_seconds_count", method="POST", route=CREATE) == 3
    task_ids = {o["task_id"] for o in info["outputs"].values()}
    for _, labels in after.values:
        for _, value in labels:
            assert not any(task_id in value for task_id in task_ids), labels  # bounded labels only
