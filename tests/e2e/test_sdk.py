"""The unchanged `dashscope` SDK against `paddock serve` (what `make run` starts), end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import numpy as np
import pytest
from dashscope import VideoSynthesis

from tests.live_server import LiveServer, paddock_process, sdk_pointed_at
from tests.support.mp4 import read_mp4, rms
from tests.videos import VideoProbe, assert_delivered, data_uri, make_image, watermark_contrast

pytestmark = pytest.mark.slow

I2V = "happyhorse-1.0-i2v"
T2V = "happyhorse-1.1-t2v"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # One job at a time, so the cancel tests know which task is RUNNING and which is PENDING.
    env = {"PADDOCK_MAX_CONCURRENT_JOBS": "1"}
    with paddock_process(tmp_path_factory.mktemp("e2e"), env=env) as live, sdk_pointed_at(live):
        yield live


def download(url: str) -> bytes:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def check_video(url: str, width: int, height: int, seconds: int, *, watermark: bool = True) -> VideoProbe:
    """What every delivered video must be: H.264, 24 fps, exact size and length, AAC, watermark."""
    return assert_delivered(download(url), width, height, seconds * 24, watermark=watermark)


def test_i2v_call_with_data_uri_keeps_image_aspect(server: LiveServer) -> None:
    image = make_image(800, 600)
    rsp = VideoSynthesis.call(
        model=I2V,
        prompt="a horse runs",
        media=[{"type": "first_frame", "url": data_uri(image)}],
        resolution="720P",
        duration=3,
        seed=7,
        api_key=server.keys[0],
    )
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    assert rsp.output.orig_prompt == "a horse runs"
    assert rsp.usage["SR"] == 720 and rsp.usage["duration"] == 3 and "ratio" not in rsp.usage
    # 4:3 image at 720P keeps ~921,600 px: 1104x832, multiples of 16.
    check_video(rsp.output.video_url, 1104, 832, 3)


def test_t2v_call_and_watermark_region(server: LiveServer) -> None:
    common = dict(
        model=T2V, prompt="a horse on a beach", resolution="720P", ratio="16:9", duration=3, seed=11
    )
    marked = VideoSynthesis.call(**common, api_key=server.keys[0])
    plain = VideoSynthesis.call(**common, watermark=False, api_key=server.keys[0])
    assert marked.output.task_status == plain.output.task_status == "SUCCEEDED"
    assert marked.usage["ratio"] == "16:9"
    with_mark = check_video(marked.output.video_url, 1280, 720, 3)
    without = check_video(plain.output.video_url, 1280, 720, 3, watermark=False)
    inside, outside = watermark_contrast(with_mark.frames, without.frames)
    assert inside > 0.05 and outside < 0.001, (inside, outside)


def test_same_seed_same_video(server: LiveServer) -> None:
    args = dict(
        model=T2V, prompt="same seed", resolution="720P", duration=3, seed=123, api_key=server.keys[0]
    )
    first = check_video(VideoSynthesis.call(**args).output.video_url, 1280, 720, 3)
    second = check_video(VideoSynthesis.call(**args).output.video_url, 1280, 720, 3)
    assert (first.frames == second.frames).all()


def test_t2v_and_i2v_carry_the_sound_the_model_made(server: LiveServer, tmp_path: Path) -> None:
    """The default t2v and i2v models generate sound with the picture (MagiHuman's joint audio,
    decoded at 44.1 kHz): the AAC track has energy, spans the video and follows the seed."""
    image = data_uri(make_image(640, 480))

    def sound(model: str, seed: int, **media: object) -> np.ndarray:
        rsp = VideoSynthesis.call(
            model=model, prompt="hooves on a wooden bridge", resolution="720P", duration=3, seed=seed,
            api_key=server.keys[0], **media,
        )  # fmt: skip
        assert rsp.output.task_status == "SUCCEEDED", rsp
        path = tmp_path / f"{model}-{seed}.mp4"
        path.write_bytes(download(rsp.output.video_url))
        facts = read_mp4(path)
        assert (facts.audio_codec, facts.audio_rate) == (
            "aac",
            44100,
        )  # the model's rate, not the 48 kHz silence
        assert facts.audio_seconds == pytest.approx(facts.video_seconds, abs=0.05)
        return facts.audio

    for model, media in (
        ("happyhorse-1.0-t2v", {}),
        (I2V, {"media": [{"type": "first_frame", "url": image}]}),
    ):
        first, other = sound(model, 1, **media), sound(model, 2, **media)
        assert rms(first) > 0.02 and rms(other) > 0.02, model
        assert rms(first - other) > 0.01, model


def test_async_call_fetch_wait(server: LiveServer) -> None:
    rsp = VideoSynthesis.async_call(
        model=T2V, prompt="async", resolution="720P", duration=3, api_key=server.keys[0]
    )
    assert rsp.status_code == HTTPStatus.OK
    assert rsp.output.task_status == "PENDING"
    fetched = VideoSynthesis.fetch(rsp, api_key=server.keys[0])
    assert fetched.output.task_status in ("PENDING", "RUNNING", "SUCCEEDED")
    done = VideoSynthesis.wait(rsp, api_key=server.keys[0])
    assert done.output.task_status == "SUCCEEDED"
    assert done.output.video_url.startswith(server.base_url)
    check_video(done.output.video_url, 1280, 720, 3)


def test_cancel_pending_and_running(server: LiveServer) -> None:
    key = server.keys[0]
    # The in-process worker runs one job at a time: the first is RUNNING while the second waits.
    first = VideoSynthesis.async_call(model=T2V, prompt="long", resolution="1080P", duration=5, api_key=key)
    second = VideoSynthesis.async_call(model=T2V, prompt="queued", resolution="720P", duration=3, api_key=key)
    canceled = VideoSynthesis.cancel(second, api_key=key)
    assert canceled.status_code == HTTPStatus.OK, canceled
    assert VideoSynthesis.fetch(second, api_key=key).output.task_status == "CANCELED"
    _wait_for_status(first.output.task_id, key, "RUNNING")
    refused = VideoSynthesis.cancel(first, api_key=key)
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert refused.code == "UnsupportedOperation"
    assert VideoSynthesis.wait(first, api_key=key).output.task_status == "SUCCEEDED"


def _wait_for_status(task_id: str, key: str, status: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = VideoSynthesis.fetch(task_id, api_key=key).output.task_status
        if current == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"{task_id} never reached {status}")


def test_list_filters_and_paging(server: LiveServer) -> None:
    key = server.keys[1]
    ids = [
        VideoSynthesis.async_call(
            model=T2V, prompt=f"list {i}", resolution="720P", duration=3, api_key=key
        ).output.task_id
        for i in range(3)
    ]
    for task_id in ids:
        VideoSynthesis.wait(task_id, api_key=key)
    page = VideoSynthesis.list(page_no=1, page_size=2, api_key=key)
    assert page.status_code == HTTPStatus.OK
    assert page.output["total"] == 3 and page.output["total_page"] == 2 and len(page.output["data"]) == 2
    assert [t["task_id"] for t in page.output["data"]] == ids[::-1][:2]
    second = VideoSynthesis.list(page_no=2, page_size=2, api_key=key)
    assert [t["task_id"] for t in second.output["data"]] == [ids[0]]
    succeeded = VideoSynthesis.list(status="SUCCEEDED", model_name=T2V, api_key=key)
    assert succeeded.output["total"] == 3
    assert all(t["status"] == "SUCCEEDED" and t["model_name"] == T2V for t in succeeded.output["data"])
    assert VideoSynthesis.list(status="FAILED", api_key=key).output["total"] == 0
    assert VideoSynthesis.list(model_name=I2V, api_key=key).output["total"] == 0


def test_i2v_with_local_file_uses_upload_flow(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "first.jpg"
    path.write_bytes(make_image(640, 960, fmt="JPEG"))
    rsp = VideoSynthesis.call(
        model=I2V,
        prompt="portrait",
        media=[{"type": "first_frame", "url": str(path)}],
        resolution="720P",
        duration=3,
        api_key=server.keys[0],
    )
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED", rsp
    check_video(rsp.output.video_url, 784, 1168, 3)  # 2:3 at ~921,600 px


def test_workspace_is_recorded_and_filters(server: LiveServer) -> None:
    key = server.keys[0]
    rsp = VideoSynthesis.async_call(
        model=T2V, prompt="ws", resolution="720P", duration=3, api_key=key, workspace="ws-blue"
    )
    assert rsp.status_code == HTTPStatus.OK
    done = VideoSynthesis.wait(rsp, api_key=key, workspace="ws-blue")
    check_video(done.output.video_url, 1280, 720, 3)
    listed = VideoSynthesis.list(api_key=key, workspace="ws-blue")
    assert [t["task_id"] for t in listed.output["data"]] == [rsp.output.task_id]
    assert listed.output["data"][0]["workspace_id"] == "ws-blue"
    other = VideoSynthesis.list(api_key=key, workspace="ws-red")
    assert other.output["total"] == 0


def test_second_key_cannot_see_or_cancel_first_keys_tasks(server: LiveServer) -> None:
    alice, bob = server.keys
    first = VideoSynthesis.async_call(
        model=T2V, prompt="alice long", resolution="1080P", duration=5, api_key=alice
    )
    mine = VideoSynthesis.async_call(model=T2V, prompt="alice", resolution="720P", duration=3, api_key=alice)
    task_id = mine.output.task_id
    assert VideoSynthesis.fetch(task_id, api_key=bob).output.task_status == "UNKNOWN"
    refused = VideoSynthesis.cancel(task_id, api_key=bob)
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert all(
        t["task_id"] != task_id for t in VideoSynthesis.list(api_key=bob, page_size=100).output["data"]
    )
    # Still alice's, still PENDING: bob's cancel changed nothing.
    assert VideoSynthesis.fetch(task_id, api_key=alice).output.task_status == "PENDING"
    VideoSynthesis.cancel(task_id, api_key=alice)
    VideoSynthesis.wait(first, api_key=alice)
