"""`GET /metrics` after real tasks that SUCCEEDED, FAILED and were CANCELED (no metric is mocked).

The app runs in-process with a real JobRunner and the tiny models. `happyhorse-1.1-i2v` points at
an empty checkpoint folder, so its job fails for real at load time (FAILED InternalError.Algo).
Counters live in one process-wide registry, so every assertion is a delta between two scrapes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from model.registry import ModelSpec, default_registry
from server import metrics
from server.api.app import create_app
from server.api.deps import Services
from tests.server.api.conftest import facade, headers, make_settings
from tests.videos import make_image

GOOD, BROKEN = "happyhorse-1.0-t2v", "happyhorse-1.1-i2v"
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
Key = tuple[str, frozenset[tuple[str, str]]]


def broken_registry(tmp_path: Path) -> dict[str, ModelSpec]:
    """The built-ins, with BROKEN served from an empty diffusers folder (loading raises)."""
    empty = tmp_path / "empty-checkpoint"
    empty.mkdir(exist_ok=True)
    registry = default_registry()
    registry[BROKEN] = replace(registry[BROKEN], checkpoint=str(empty))
    return registry


def gated_worker(
    gate: asyncio.Event,
) -> Callable[[FastAPI, Services], Awaitable[Callable[[], Awaitable[None]]]]:
    """An in-process JobRunner (as `paddock serve` runs it) that starts claiming once `gate` is set,
    so a test can cancel a task while it is still PENDING. Models load on first use."""

    async def start(app: FastAPI, services: Services) -> Callable[[], Awaitable[None]]:
        from model.generator import VideoGenerator
        from server.worker.runner import JobRunner

        class LazyGenerator(VideoGenerator):
            def warm_up(self, names: Iterable[str] | None = None) -> None:
                pass  # BROKEN cannot load; the jobs load what they need

        runner = JobRunner(
            services.queue,
            services.store,
            LazyGenerator(services.registry),
            task_ttl_s=3600,
            task_timeout_s=600,
        )
        app.state.worker = runner

        async def run() -> None:
            await gate.wait()
            await runner.run()

        task = asyncio.create_task(run())

        async def stop() -> None:
            runner.stop()
            gate.set()
            await asyncio.wait_for(task, timeout=60)

        return stop

    return start


@contextlib.asynccontextmanager
async def worker_app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, asyncio.Event]]:
    """A facade + gated in-process worker; yields the client and the gate."""
    gate = asyncio.Event()
    app = create_app(
        make_settings(tmp_path), registry=broken_registry(tmp_path), worker_factory=gated_worker(gate)
    )
    async with facade(app) as client:
        yield client, gate


def data_uri_png() -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()


async def submit(client: httpx.AsyncClient, model: str) -> str:
    body: dict[str, Any] = {"model": model, "input": {"prompt": "a horse"}}
    body["parameters"] = {"resolution": "720P", "duration": 3}
    if model == BROKEN:
        body["input"]["media"] = [{"type": "first_frame", "url": data_uri_png()}]
    rsp = await client.post(CREATE, json=body, headers=headers())
    assert rsp.status_code == 200, rsp.text
    return str(rsp.json()["output"]["task_id"])


async def wait_final(client: httpx.AsyncClient, task_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        output: dict[str, Any] = (await client.get(f"/api/v1/tasks/{task_id}", headers=headers())).json()[
            "output"
        ]
        if output["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            return output
        await asyncio.sleep(0.2)
    raise AssertionError(f"{task_id} not final after {timeout_s}s")


class Scrape:
    """One parsed `/metrics` exposition: family types and sample values."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.values: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over every series of `name` whose labels include `labels`."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and want <= ls)


async def scrape(client: httpx.AsyncClient) -> Scrape:
    rsp = await client.get("/metrics")
    assert rsp.status_code == 200
    assert rsp.headers["content-type"].startswith("text/plain")
    return Scrape(rsp.text)


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


def test_observe_step_records_step_and_batch() -> None:
    before = Scrape(metrics_text())
    metrics.observe_step("happyhorse-1.0-t2v", batch_size=3, seconds=0.2)
    after = Scrape(metrics_text())
    step = "paddock_step_duration_seconds_count"
    assert after.get(step, model="happyhorse-1.0-t2v") - before.get(step, model="happyhorse-1.0-t2v") == 1
    assert after.get("paddock_batch_size_sum") - before.get("paddock_batch_size_sum") == 3
    metrics.record_retry()
    metrics.record_dead_letter()
    final = Scrape(metrics_text())
    assert final.get("paddock_job_retries_total") - after.get("paddock_job_retries_total") == 1
    assert final.get("paddock_dead_letters_total") - after.get("paddock_dead_letters_total") == 1


def metrics_text() -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.REGISTRY).decode()
