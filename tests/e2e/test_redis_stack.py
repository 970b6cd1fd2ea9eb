"""`paddock api` + `paddock worker` processes sharing a real Redis and one storage folder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dashscope import VideoSynthesis

from tests.live_server import LiveServer, paddock_process, sdk_pointed_at
from tests.videos import assert_delivered, data_uri, make_image

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[LiveServer]:
    env = {
        "PADDOCK_QUEUE_URL": redis_url,
        "PADDOCK_STORAGE_URL": f"file://{tmp_path / 'data'}",
        # The facade refuses models no live worker serves: the worker must announce over Redis.
        "PADDOCK_REQUIRE_LIVE_WORKER": "true",
    }
    with (
        paddock_process(tmp_path, command="api", env=env) as api,
        paddock_process(tmp_path, command="worker", env=env, wait_ready=False),
        sdk_pointed_at(api),
    ):
        yield api


def wait_for_worker(stack: LiveServer, model: str, timeout_s: float = 120) -> int:
    """Submit until the facade stops answering 503 (the worker has loaded and announced);
    returns how many 503s were seen."""
    body = {"model": model, "input": {"prompt": "probe"}, "parameters": {"resolution": "720P", "duration": 3}}
    headers = {"Authorization": f"Bearer {stack.keys[0]}", "X-DashScope-Async": "enable"}
    refused = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{stack.api_url}/services/aigc/video-generation/video-synthesis",
            json=body,
            headers=headers,
            timeout=30,
        )
        if response.status_code == 200:
            return refused
        assert response.status_code == 503 and response.json()["code"] == "ModelUnavailable", response.text
        refused += 1
        time.sleep(0.5)
    raise TimeoutError("no worker announced itself")


def test_jobs_flow_through_redis_to_a_worker_process(stack: LiveServer) -> None:
    wait_for_worker(stack, "happyhorse-1.0-t2v")
    key = stack.keys[0]
    image = data_uri(make_image(600, 600))
    tasks = [
        VideoSynthesis.async_call(
            model="happyhorse-1.0-i2v",
            media=[{"type": "first_frame", "url": image}],
            resolution="720P",
            duration=3,
            seed=i,
            api_key=key,
        )
        for i in range(2)
    ]
    for task in tasks:
        done = VideoSynthesis.wait(task, api_key=key)
        assert done.output.task_status == "SUCCEEDED", done
        assert done.output.scheduled_time and done.output.end_time
        assert_delivered(httpx.get(done.output.video_url, timeout=30).content, 960, 960, 72)
