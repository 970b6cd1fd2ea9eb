"""The unchanged `openai` SDK against `paddock serve`'s /v1/videos, end to end: create_and_poll,
retrieve, list, delete, remix, download_content (video, thumbnail, spritesheet), image-to-video
from a file, the SDK's error classes, Idempotency-Key, one task across both surfaces, and the
signed webhook of a finished video."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml
from dashscope import VideoSynthesis
from PIL import Image

from tests.live_server import LiveServer, paddock_process, sdk_pointed_at
from tests.support.webhook_receiver import Receiver, event_of, new_secret, receiving
from tests.videos import assert_delivered, make_image

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

ALICE, BOB = "sk-e2e-alice-0123456789", "sk-e2e-bob-0123456789"
SECRET = new_secret()
POLL_MS = 200


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as live:
        yield live


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("openai")
    keys = tmp / "keys.yaml"
    alice = {"key": ALICE, "tenant": "alice", "webhook_url": receiver.url, "webhook_secret": SECRET}
    keys.write_text(yaml.safe_dump({"keys": [alice, {"key": BOB, "tenant": "bob"}]}))
    env = {
        "PADDOCK_API_KEYS": str(keys),
        "PADDOCK_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "PADDOCK_WEBHOOK_POLL_INTERVAL_S": "0.1",
    }
    with paddock_process(tmp, env=env, keys=[ALICE, BOB]) as live, sdk_pointed_at(live):
        yield live


def client_for(server: LiveServer, key: str = ALICE) -> openai.OpenAI:
    # No retries: every answer checked here is the first one.
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def finished(server: LiveServer) -> openai.types.Video:
    """One text-to-video made with create_and_poll, shared by the tests that need a finished video."""
    return client_for(server).videos.create_and_poll(
        prompt="a horse on a beach", model="sora-2", seconds="4", size="1280x720", poll_interval_ms=POLL_MS
    )


def test_create_and_poll_then_download_every_variant(
    server: LiveServer, finished: openai.types.Video
) -> None:
    assert (finished.status, finished.progress, finished.size, finished.seconds) == (
        "completed",
        100,
        "1280x720",
        "4",
    )
    assert finished.model == "happyhorse-1.0-t2v" and finished.error is None and finished.completed_at
    videos = client_for(server).videos
    assert_delivered(videos.download_content(finished.id).content, 1280, 720, 4 * 24)
    thumbnail = Image.open(io.BytesIO(videos.download_content(finished.id, variant="thumbnail").content))
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (1280, 720))
    sheet = Image.open(io.BytesIO(videos.download_content(finished.id, variant="spritesheet").content))
    assert sheet.format == "JPEG" and sheet.size == (4 * 256, 4 * 144)


def test_the_finished_video_was_announced_by_a_signed_webhook(
    finished: openai.types.Video, receiver: Receiver
) -> None:
    events = [event_of(r, SECRET) for r in receiver.wait_for(1)]
    (mine,) = [e for e in events if e["data"]["output"]["task_id"] == finished.id]
    assert mine["type"] == "task.succeeded"
    assert mine["data"]["output"]["video_url"].startswith("http://127.0.0.1")


def test_retrieve_list_and_delete(server: LiveServer, finished: openai.types.Video) -> None:
    videos = client_for(server).videos
    queued = videos.create(prompt="a second horse", seconds="4")
    assert queued.status in ("queued", "in_progress")
    assert videos.retrieve(finished.id).status == "completed"
    listed = [v.id for v in videos.list(limit=1)]  # the SDK follows `after` page by page
    assert listed.index(queued.id) < listed.index(finished.id)
    assert [v.id for v in videos.list(order="asc", limit=100)] == listed[::-1]
    assert client_for(server, BOB).videos.list().data == []
    done = videos.poll(queued.id, poll_interval_ms=POLL_MS)
    deleted = videos.delete(done.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (done.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        videos.retrieve(done.id)


def test_image_to_video_from_a_file(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "horse.jpg"
    path.write_bytes(make_image(640, 960, fmt="JPEG"))
    videos = client_for(server).videos
    video = videos.create_and_poll(
        prompt="the horse turns its head",
        input_reference=path,
        seconds="4",
        size="720x1280",
        poll_interval_ms=POLL_MS,
    )
    assert (video.status, video.model, video.size) == ("completed", "happyhorse-1.0-i2v", "784x1168")
    assert_delivered(videos.download_content(video.id).content, 784, 1168, 4 * 24)


def test_remix_edits_the_finished_video(server: LiveServer, finished: openai.types.Video) -> None:
    videos = client_for(server).videos
    remix = videos.remix(finished.id, prompt="the same beach at night")
    assert remix.remixed_from_video_id == finished.id and remix.model == "happyhorse-1.0-video-edit"
    done = videos.poll(remix.id, poll_interval_ms=POLL_MS)
    assert (done.status, done.size, done.seconds) == ("completed", "1280x720", "4")
    assert_delivered(videos.download_content(done.id).content, 1280, 720, 4 * 24)


def test_the_sdk_error_classes(server: LiveServer, finished: openai.types.Video) -> None:
    videos = client_for(server).videos
    with pytest.raises(openai.BadRequestError) as bad:
        videos.create(prompt="x", seconds="99")  # type: ignore[arg-type]
    assert bad.value.param == "seconds" and "from 3 to 15" in bad.value.message
    with pytest.raises(openai.AuthenticationError):
        client_for(server, "sk-nobody").videos.list()
    with pytest.raises(openai.NotFoundError):
        videos.retrieve("no-such-video")
    with pytest.raises(openai.NotFoundError):
        client_for(server, BOB).videos.retrieve(finished.id)  # another tenant's
    with pytest.raises(openai.BadRequestError):
        videos.download_content(finished.id, variant="gif")  # type: ignore[arg-type]


def test_idempotency_key_through_the_sdk(server: LiveServer) -> None:
    videos = client_for(server).videos
    key = {"Idempotency-Key": "sdk-order-1"}
    first = videos.create(prompt="once", seconds="4", extra_headers=key)
    again = videos.create(prompt="once", seconds="4", extra_headers=key)
    assert again.id == first.id
    with pytest.raises(openai.ConflictError):
        videos.create(prompt="another", seconds="4", extra_headers=key)
    videos.poll(first.id, poll_interval_ms=POLL_MS)


def test_one_task_on_both_surfaces(server: LiveServer) -> None:
    made = VideoSynthesis.async_call(
        model="happyhorse-1.0-t2v", prompt="dashscope made me", duration=3, api_key=ALICE
    )
    seen = client_for(server).videos.retrieve(made.output.task_id)
    assert (seen.prompt, seen.seconds) == ("dashscope made me", "3")
    video = client_for(server).videos.create(prompt="openai made me", seconds="4")
    fetched = VideoSynthesis.fetch(video.id, api_key=ALICE)
    assert fetched.output.task_status in ("PENDING", "RUNNING", "SUCCEEDED")
    assert VideoSynthesis.wait(video.id, api_key=ALICE).output.task_status == "SUCCEEDED"
    assert client_for(server).videos.poll(made.output.task_id, poll_interval_ms=POLL_MS).status == "completed"
