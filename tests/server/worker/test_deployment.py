"""Ray Serve replicas behind a real `paddock api` facade, on one real Redis and one storage folder.

One Ray cluster for the whole module (2 CPUs, no dashboard, a 200 MiB object store), the
application deployed in-process with `serve.run(build_app(...))`: CPU replicas of tiny models,
autoscaled by `QueueLagPolicy` between 0 and 1 replica. Never run under xdist (one cluster each).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # before ray is imported
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import httpx
import pytest
import ray
import redis
from ray import serve

from server.jobs import make_task_queue
from server.jobs.job import TaskRecord
from server.jobs.redis_layout import GROUP_NAME, STREAM_KEY
from server.worker.deployment import APP_NAME, DEPLOYMENT_NAME, build_app
from tests.live_server import LiveServer, paddock_process

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.redis]

MODEL = "happyhorse-1.0-t2v"
# Enough tiny steps that a job is still denoising when its replica is killed.
MODELS_YAML = f"""
models:
  {MODEL}:
    size_multiple: 32
    num_inference_steps: 60
"""
CLAIM_TIMEOUT_S = 3.0
OBJECT_STORE_BYTES = 200 * 1024 * 1024
CREATE = "/services/aigc/video-generation/video-synthesis"


@dataclass
class Stack:
    api: LiveServer
    redis_url: str
    data_dir: Path

    def submit(self, seed: int) -> str:
        body = {
            "model": MODEL,
            "input": {"prompt": f"a horse {seed}"},
            "parameters": {"resolution": "720P", "ratio": "1:1", "duration": 3, "seed": seed},
        }
        headers = {"Authorization": f"Bearer {self.api.keys[0]}", "X-DashScope-Async": "enable"}
        response = httpx.post(f"{self.api.api_url}{CREATE}", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["output"]["task_id"])

    def task(self, task_id: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api.keys[0]}"}
        response = httpx.get(f"{self.api.api_url}/tasks/{task_id}", headers=headers, timeout=30)
        return dict(response.json()["output"])

    def wait_final(self, task_id: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            output = self.task(task_id)
            if output["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                return output
            time.sleep(0.25)
        raise AssertionError(f"task {task_id} not final after {timeout_s} s: {self.task(task_id)}")

    def record(self, task_id: str) -> TaskRecord | None:
        async def read() -> TaskRecord | None:
            queue = make_task_queue(self.redis_url, ttl_s=86_400)
            try:
                return await queue.get(task_id)
            finally:
                await queue.close()

        return asyncio.run(read())


def replica_count() -> int:
    """RUNNING replicas of the worker deployment, as the controller sees them."""
    app = serve.status().applications.get(APP_NAME)
    if app is None or DEPLOYMENT_NAME not in app.deployments:
        return 0
    return int(app.deployments[DEPLOYMENT_NAME].replica_states.get("RUNNING", 0))


def wait_for(predicate: Any, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def replica_actors() -> list[str]:
    prefix = f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT_NAME}#"
    return [
        a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)
    ]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """The module's one Ray cluster, small enough for a 2-core CI machine."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, cluster: None) -> Iterator[Stack]:
    """`paddock api` on Redis, and the worker application on the cluster (0..1 replicas)."""
    tmp = tmp_path_factory.mktemp("ray-stack")
    flush = redis.Redis.from_url(redis_url)
    flush.flushdb()
    flush.close()
    models = tmp / "models.yaml"
    models.write_text(MODELS_YAML)
    data_dir = tmp / "data"
    env = {"PADDOCK_QUEUE_URL": redis_url, "PADDOCK_MODELS": str(models)}
    settings = {
        "queue_url": redis_url,
        "storage_url": f"file://{data_dir}",
        "data_dir": str(data_dir),  # the facade's signing secret
        "models": str(models),
        "max_concurrent_jobs": 2,
        "claim_timeout_s": CLAIM_TIMEOUT_S,
        "shutdown_grace_s": 5.0,
        "log_format": "text",
    }
    autoscaling = {
        "min_replicas": 0,
        "max_replicas": 1,
        "upscale_delay_s": 0,
        "downscale_delay_s": 1,
        "downscale_to_zero_delay_s": 1,
        "poll_interval_s": 0.5,
    }
    with paddock_process(tmp, command="api", env=env) as api:  # creates the data dir and its secret
        serve.start(proxy_location="Disabled")  # nothing reaches the workers over HTTP
        app = build_app({"settings": settings, "autoscaling": autoscaling})
        serve.run(app, name=APP_NAME, route_prefix=None)
        try:
            yield Stack(api=api, redis_url=redis_url, data_dir=data_dir)
        finally:
            serve.shutdown()


def test_facade_jobs_succeed_on_replicas_that_scale_from_and_to_zero(stack: Stack) -> None:
    assert replica_count() == 0  # an empty queue needs no replica
    tasks = [stack.submit(seed) for seed in (1, 2)]
    for task_id in tasks:
        output = stack.wait_final(task_id, timeout_s=180)
        assert output["task_status"] == "SUCCEEDED", output
        video = httpx.get(output["video_url"], timeout=30)
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    idle = wait_for(lambda: replica_count() == 0, 60, "the idle replica to be scaled away")
    print(f"\nscaled back to zero {idle:.1f} s after the last job")


def test_a_killed_replica_is_replaced_and_its_job_succeeds_exactly_once(stack: Stack) -> None:
    task_id = stack.submit(seed=7)

    def denoising() -> bool:
        record = stack.record(task_id)
        return record is not None and (record.progress_step or 0) >= 2

    wait_for(denoising, 180, "the job to start denoising on a replica")
    [victim] = replica_actors()
    killed_at = time.monotonic()
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=False)

    def replaced() -> bool:
        return replica_count() == 1 and victim not in replica_actors()

    replaced_s = wait_for(replaced, 180, "Serve to replace the killed replica")
    output = stack.wait_final(task_id, timeout_s=180)
    recovery_s = time.monotonic() - killed_at
    print(
        f"\nrecovery after killing replica {victim.rsplit('#', 1)[-1]} mid-job: new replica RUNNING "
        f"after {replaced_s:.1f} s, job SUCCEEDED {recovery_s:.1f} s after the kill"
    )
    assert output["task_status"] == "SUCCEEDED", output
    assert victim not in replica_actors()

    record = stack.record(task_id)
    assert record is not None and record.attempt == 2  # the killed attempt, then the reclaimed one
    assert record.result_key == f"results/{task_id}/2.mp4"
    results = sorted(p.name for p in (stack.data_dir / "objects" / "results" / task_id).iterdir())
    assert results == ["2.mp4"]  # one result object: the killed attempt never uploaded
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        pel = client.xpending(STREAM_KEY.format(p="paddock:"), GROUP_NAME.format(p="paddock:"))
    finally:
        client.close()
    assert pel["pending"] == 0  # acknowledged once, nothing left claimed


def test_rank_actors_join_rank_zero_in_one_group(cluster: None) -> None:
    """What a multi-GPU replica does, on CPU: rank 1 is a Ray actor running `rank_main`, and
    the two-rank frames equal the single-process ones; a dead rank makes the group unhealthy."""
    import functools

    from model.backends import create_backend
    from model.generator import VideoGenerator
    from server.worker.deployment import RayParallelGroup
    from tests.support.parallel import ENGINE_TOL, JOBS, NAME, base_spec, engine_frames, max_diff

    single = engine_frames(create_backend(base_spec()), JOBS)
    factory = functools.partial(RayParallelGroup, rank_options={"num_gpus": 0, "num_cpus": 1})
    generator = VideoGenerator({NAME: base_spec(ulysses_degree=2)}, group_factory=factory)
    try:
        group = generator.backend(NAME).runner
        assert isinstance(group, RayParallelGroup) and group.healthy() and generator.healthy()
        assert max_diff(engine_frames(generator.backend(NAME), JOBS, generator.engine), single) <= ENGINE_TOL
        group.processes[0].kill()  # type: ignore[attr-defined]
        wait_for(lambda: not generator.healthy(), 30, "the generator to notice its dead rank")
    finally:
        generator.close()
