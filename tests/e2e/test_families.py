"""Every model family end to end through the facade with its media types, plus progress and the
time limit, driven by the unchanged dashscope SDK against `paddock serve`."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from dashscope import VideoSynthesis

from tests.live_server import LiveServer, paddock_process, sdk_pointed_at
from tests.videos import assert_delivered, data_uri, make_image, make_video, probe_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with paddock_process(tmp_path_factory.mktemp("families")) as live, sdk_pointed_at(live):
        yield live


def audio_rms(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        chunks = [
            f.to_ndarray().astype(np.float64).ravel() for f in container.decode(container.streams.audio[0])
        ]
    samples = np.concatenate(chunks)
    return float(np.sqrt(np.mean(samples**2)))


def test_r2v_with_reference_images(server: LiveServer) -> None:
    refs = [{"type": "reference_image", "url": data_uri(make_image(640, 480, seed=s))} for s in (1, 2)]
    rsp = VideoSynthesis.call(
        model="happyhorse-1.0-r2v",
        prompt="[Image 1] meets [Image 2] on a beach",
        media=refs,
        resolution="720P",
        ratio="1:1",
        duration=3,
        api_key=server.keys[0],
    )
    assert rsp.output.task_status == "SUCCEEDED", rsp
    assert rsp.usage["ratio"] == "1:1"
    assert_delivered(httpx.get(rsp.output.video_url, timeout=30).content, 960, 960, 72)


@pytest.mark.parametrize("audio_setting", ["origin", "auto"])
def test_video_edit_follows_the_source(server: LiveServer, tmp_path: Path, audio_setting: str) -> None:
    source = tmp_path / "source.mp4"
    source.write_bytes(make_video(640, 360, seconds=4, fps=12, tone_hz=440))
    media = [
        {"type": "video", "url": str(source)},  # a local path: the SDK's upload flow, then oss://
        {"type": "reference_image", "url": data_uri(make_image(400, 400))},
    ]
    rsp = VideoSynthesis.call(
        model="happyhorse-1.0-video-edit",
        prompt="make it snow",
        media=media,
        resolution="720P",
        audio_setting=audio_setting,
        api_key=server.keys[0],
    )
    assert rsp.output.task_status == "SUCCEEDED", rsp
    assert rsp.usage["input_video_duration"] == pytest.approx(4.0, abs=0.1)
    assert rsp.usage["output_video_duration"] == pytest.approx(4.0, abs=0.1)
    data = httpx.get(rsp.output.video_url, timeout=30).content
    video = probe_video(data)
    # The source's 16:9 aspect at 720P, exactly as long as the source.
    assert (video.width, video.height, video.frame_count) == (1280, 720, 96)
    assert video.audio_codec == "aac"
    rms = audio_rms(data)
    assert (rms > 0.05) if audio_setting == "origin" else (rms < 1e-4), rms


def test_running_task_shows_progress(server: LiveServer) -> None:
    rsp = VideoSynthesis.async_call(
        model="happyhorse-1.0-t2v", prompt="progress", resolution="1080P", duration=5, api_key=server.keys[0]
    )
    deadline = time.monotonic() + 120
    progress = None
    while time.monotonic() < deadline and progress is None:
        body = httpx.get(
            f"{server.api_url}/tasks/{rsp.output.task_id}",
            headers={"Authorization": f"Bearer {server.keys[0]}"},
        ).json()
        if body["output"]["task_status"] == "RUNNING":
            progress = body["output"].get("progress")
        time.sleep(0.05)
    assert progress is not None, "never saw a RUNNING task with progress"
    assert set(progress) == {"step", "total_steps"} and 1 <= progress["step"] <= progress["total_steps"]
    assert VideoSynthesis.wait(rsp, api_key=server.keys[0]).output.task_status == "SUCCEEDED"


def test_a_task_past_its_time_limit_fails_with_timeout(tmp_path: Path) -> None:
    # A limit of 0 s: the first step boundary is already past it.
    with paddock_process(tmp_path, env={"PADDOCK_TASK_TIMEOUT_S": "0"}) as live, sdk_pointed_at(live):
        rsp = VideoSynthesis.call(
            model="happyhorse-1.0-t2v", prompt="too slow", resolution="720P", duration=3, api_key=live.keys[0]
        )
    assert rsp.output.task_status == "FAILED"
    assert rsp.output.code == "InternalError.Timeout"
    assert rsp.output.message
