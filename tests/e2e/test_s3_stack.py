"""The unchanged `dashscope` SDK against `paddock serve` with results in S3 (moto's HTTP server).

Inputs, uploads (the SDK's local-file flow) and results all go through the S3 store; the
`video_url` handed out is a presigned S3 URL, fetched with plain httpx like any client would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashscope import VideoSynthesis

from server.storage.s3 import EXPIRES_META
from tests.live_server import LiveServer, paddock_process, sdk_pointed_at
from tests.s3_server import AWS_ENV, aws_env, moto_s3, s3_client
from tests.videos import assert_delivered, data_uri, make_image

pytestmark = pytest.mark.slow

I2V = "happyhorse-1.0-i2v"
T2V = "happyhorse-1.0-t2v"
BUCKET = "paddock-e2e"
PREFIX = "pfx"
UPLOAD_TTL_S = 172_800
# Long enough for one 3 s 720P job on a small shared CPU (~10 s), short enough to wait out.
TTL_S = 20


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with aws_env(), moto_s3() as url:
        s3_client(url).create_bucket(Bucket=BUCKET)
        yield url


@contextmanager
def s3_paddock(tmp: Path, endpoint: str, prefix: str, **extra_env: str) -> Iterator[LiveServer]:
    """`paddock serve` storing everything in `s3://BUCKET/prefix`, with the SDK pointed at it."""
    env = {
        "PADDOCK_STORAGE_URL": f"s3://{BUCKET}/{prefix}",
        "PADDOCK_S3_ENDPOINT_URL": endpoint,
        **AWS_ENV,
        **extra_env,
    }
    with paddock_process(tmp, env=env) as live, sdk_pointed_at(live):
        yield live


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, endpoint: str) -> Iterator[LiveServer]:
    with s3_paddock(tmp_path_factory.mktemp("e2e-s3"), endpoint, PREFIX) as live:
        yield live


def stored(endpoint: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Every object under `prefix` in the test bucket: key -> its HEAD response."""
    client = s3_client(endpoint)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {obj["Key"]: client.head_object(Bucket=BUCKET, Key=obj["Key"]) for obj in listed}


def check_s3_video(url: str, endpoint: str, width: int, height: int, seconds: int) -> None:
    """The URL is presigned S3 (not the facade) and serves the video every result must be."""
    assert url.startswith(f"{endpoint}/{BUCKET}/{PREFIX}/results/"), url
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=" in url
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert_delivered(response.content, width, height, seconds * 24)


def test_i2v_with_data_uri_stores_inputs_and_result_in_s3(server: LiveServer, endpoint: str) -> None:
    rsp = VideoSynthesis.call(
        model=I2V,
        prompt="a horse runs",
        media=[{"type": "first_frame", "url": data_uri(make_image(800, 600))}],
        resolution="720P",
        duration=3,
        seed=7,
        api_key=server.keys[0],
    )
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED", rsp
    check_s3_video(rsp.output.video_url, endpoint, 1104, 832, 3)  # 4:3 at ~921,600 px
    task_id = rsp.output.task_id
    objects = stored(endpoint, f"{PREFIX}/")
    assert f"{PREFIX}/inputs/{task_id}/0.png" in objects
    results = [key for key in objects if key.startswith(f"{PREFIX}/results/{task_id}/")]
    assert len(results) == 1 and results[0].endswith(".mp4")
    assert float(objects[results[0]]["Metadata"][EXPIRES_META]) > time.time() + 86_000


def test_i2v_with_local_file_goes_through_the_upload_flow(
    server: LiveServer, endpoint: str, tmp_path: Path
) -> None:
    path = tmp_path / "first.jpg"
    path.write_bytes(make_image(640, 960, fmt="JPEG"))
    uploaded_at = time.time()
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
    check_s3_video(rsp.output.video_url, endpoint, 784, 1168, 3)  # 2:3 at ~921,600 px
    uploads = stored(endpoint, f"{PREFIX}/uploads/dashscope-instant/")
    assert [key for key in uploads if key.endswith("/first.jpg")], sorted(uploads)
    for head in uploads.values():  # uploads live 48 h
        assert float(head["Metadata"][EXPIRES_META]) == pytest.approx(uploaded_at + UPLOAD_TTL_S, abs=120)


def test_task_and_presigned_url_expire_with_the_ttl(endpoint: str, tmp_path: Path) -> None:
    with s3_paddock(tmp_path, endpoint, "short", PADDOCK_TASK_TTL_S=str(TTL_S)) as live:
        key = live.keys[0]
        submitted_at = time.time()
        rsp = VideoSynthesis.call(
            model=T2V, prompt="short lived", resolution="720P", duration=3, seed=3, api_key=key
        )
        assert rsp.output.task_status == "SUCCEEDED", rsp
        url = rsp.output.video_url
        assert httpx.get(url, timeout=30).status_code == 200
        time.sleep(max(0.0, submitted_at + TTL_S + 1.5 - time.time()))
        assert VideoSynthesis.fetch(rsp.output.task_id, api_key=key).output.task_status == "UNKNOWN"
        gone = httpx.get(url, timeout=30)
        assert gone.status_code == 403, gone.text
        assert "AccessDenied" in gone.text
