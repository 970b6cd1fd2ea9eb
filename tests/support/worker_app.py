"""A facade with a gated in-process worker on the tiny models, and scraping its `/metrics`: shared
by the tests of metrics and logs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from model.registry import ModelSpec, default_registry
from server.api.app import WorkerFactory, create_app
from server.metrics import MetricsRecorder
from server.wiring import Wiring
from server.worker.factory import build_worker
from server.worker.runner import JobRunner
from tests.support.facade import facade, headers, make_settings
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


class GatedRunner:
    """An in-process JobRunner (as `paddock serve` builds it) that starts claiming once `gate` is
    set, so a test can cancel a task while it is still PENDING. Models load on first use."""

    def __init__(self, runner: JobRunner, gate: asyncio.Event) -> None:
        self.runner, self.gate = runner, gate

    @property
    def ready(self) -> bool:
        return self.runner.ready

    async def run(self) -> None:
        await self.gate.wait()
        await self.runner.run()

    def stop(self) -> None:
        self.runner.stop()
        self.gate.set()


def gated_worker(gate: asyncio.Event) -> WorkerFactory:
    """`build_worker`, gated, and without warming up (BROKEN cannot load)."""

    def factory(wiring: Wiring, recorder: MetricsRecorder) -> GatedRunner:
        runner = build_worker(wiring, recorder)
        runner.generator.warm_up = lambda names=None: None  # type: ignore[method-assign]
        return GatedRunner(runner, gate)

    return factory


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
