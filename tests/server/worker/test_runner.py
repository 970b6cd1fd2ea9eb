"""JobRunner in burst mode over the memory queue, a local store and the real tiny t2v model: jobs run
to SUCCEEDED, a job past its limit fails, a stop hands running jobs back, and a stale attempt's
result is thrown away with its upload."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model.generator import VideoGenerator
from model.registry import default_registry
from server.jobs import MemoryTaskQueue
from server.jobs.job import JobSpec, TaskRecord, TaskStatus
from server.metrics import MetricsRecorder
from server.signing import Signer
from server.storage import LocalObjectStore
from server.worker.runner import JobRunner

MODEL = "happyhorse-1.0-t2v"


def t2v_record() -> TaskRecord:
    spec = JobSpec(
        MODEL, "t2v", "a horse", 320, 192, 1.0, seed=7, watermark=False, resolution="720P", ratio="16:9"
    )
    return TaskRecord(
        task_id=str(uuid.uuid4()),
        request_id="r",
        tenant="t",
        model=MODEL,
        spec=spec,
        submit_time=time.time(),
        orig_prompt=spec.prompt,
    )


@pytest.fixture(scope="module")
def generator() -> VideoGenerator:
    """One loaded tiny t2v model for the module (the runner closes only its own engine)."""
    return VideoGenerator({MODEL: default_registry()[MODEL]})


class KeepOpen:
    """The module's generator, with `close` left to the fixture (each runner closes its own)."""

    def __init__(self, inner: VideoGenerator) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def close(self) -> None:
        pass


class HeldGenerator(KeepOpen):
    """Generates only once `released` is set, so a test can act while a job is mid-generation
    however fast the machine generates."""

    def __init__(self, inner: VideoGenerator, released: threading.Event) -> None:
        super().__init__(inner)
        self.released = released

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.released.wait(60)
        return self.inner.generate(*args, **kwargs)


def make_runner(
    queue: MemoryTaskQueue, store: LocalObjectStore, generator: VideoGenerator, **options: Any
) -> JobRunner:
    settings: dict[str, Any] = {
        "task_ttl_s": 3600,
        "task_timeout_s": 600,
        "metrics": MetricsRecorder.prometheus(),
    }
    return JobRunner(queue, store, KeepOpen(generator), **{**settings, **options})  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store", "http://testserver", Signer(b"s" * 32))


def result_keys(store: LocalObjectStore) -> set[str]:
    """The result objects the store holds (its files under objects/results)."""
    objects = Path(store.root) / "objects"
    return {str(p.relative_to(objects)) for p in (objects / "results").rglob("*.mp4")}


async def wait_for(predicate: Callable[[], Any], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_burst_runs_every_job_then_returns(store: LocalObjectStore, generator: VideoGenerator) -> None:
    queue = MemoryTaskQueue(ttl_s=3600)
    records = [t2v_record(), t2v_record()]
    for record in records:
        await queue.submit(record)
    await asyncio.wait_for(make_runner(queue, store, generator, max_concurrent_jobs=2).run(burst=True), 120)
    for record in records:
        done = await queue.get(record.task_id)
        assert done is not None and done.status == TaskStatus.SUCCEEDED
        assert done.result_key == f"results/{record.task_id}/1.mp4" and store.exists(done.result_key)
    assert result_keys(store) == {f"results/{r.task_id}/1.mp4" for r in records}


async def test_a_job_past_its_limit_fails_with_timeout(
    store: LocalObjectStore, generator: VideoGenerator
) -> None:
    queue = MemoryTaskQueue(ttl_s=3600)
    record = t2v_record()
    await queue.submit(record)
    # The runner's clock is already past the task's limit: the first step boundary stops it.
    late = lambda: time.time() + 700  # noqa: E731
    await asyncio.wait_for(make_runner(queue, store, generator, clock=late).run(burst=True), 120)
    failed = await queue.get(record.task_id)
    assert failed is not None and (failed.status, failed.code) == (TaskStatus.FAILED, "InternalError.Timeout")
    assert result_keys(store) == set()


async def test_stop_hands_running_jobs_back(store: LocalObjectStore, generator: VideoGenerator) -> None:
    queue = MemoryTaskQueue(ttl_s=3600)
    record = t2v_record()
    await queue.submit(record)
    runner = make_runner(queue, store, generator, shutdown_grace_s=0.0)
    running = asyncio.create_task(runner.run())

    async def is_running() -> bool:
        current = await queue.get(record.task_id)
        return current is not None and current.status == TaskStatus.RUNNING

    await wait_for(is_running)
    runner.stop()
    await asyncio.wait_for(running, 60)
    back = await queue.get(record.task_id)
    assert back is not None and back.status == TaskStatus.PENDING and back.scheduled_time is None
    assert await queue.depth() == 1  # the next claim anywhere takes it at once
    assert result_keys(store) == set()


async def test_a_stale_attempt_result_is_discarded(
    store: LocalObjectStore, generator: VideoGenerator
) -> None:
    # No heartbeats and a short claim timeout: while the runner generates, another worker's
    # claim takes the job over (attempt 2), so the runner's commit is refused by the fence.
    queue = MemoryTaskQueue(ttl_s=3600, claim_timeout_s=0.2)
    record = t2v_record()
    await queue.submit(record)
    released = threading.Event()  # the generation waits until the other worker has the job
    runner = make_runner(queue, store, HeldGenerator(generator, released), heartbeat_s=3600)
    running = asyncio.create_task(runner.run(burst=True))

    async def is_running() -> bool:
        current = await queue.get(record.task_id)
        return current is not None and current.status == TaskStatus.RUNNING

    try:
        await wait_for(is_running)
        await asyncio.sleep(0.25)
        thief = await queue.claim("other-worker", timeout_s=1.0)
    finally:
        released.set()
    assert thief is not None and (thief.task_id, thief.attempt) == (record.task_id, 2)

    async def keep_alive() -> None:  # the other worker is alive: its claim is never reclaimed
        while True:
            await queue.heartbeat(thief)
            await asyncio.sleep(0.05)

    beating = asyncio.create_task(keep_alive())
    await asyncio.wait_for(running, 120)
    beating.cancel()
    current = await queue.get(record.task_id)
    assert current is not None and (current.status, current.attempt) == (TaskStatus.RUNNING, 2)
    assert result_keys(store) == set()  # attempt 1's upload was deleted
