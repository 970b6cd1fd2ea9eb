"""One contract for every `ObjectStore`: `file://` (a folder + the facade's `/files/` route) and
`s3://` (boto3 against moto's real HTTP server), plus the S3-only parts (presign limits, CDN URLs).

URLs are fetched with a plain HTTP client (httpx), as a DashScope client would fetch `video_url`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from boto3.s3.transfer import TransferConfig
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from server.api import files
from server.config import Settings
from server.errors import DashScopeError
from server.signing import Signer
from server.storage import LocalObjectStore, ObjectNotFound, ObjectStore, make_object_store
from server.storage.s3 import (
    EXPIRES_META,
    MAX_PRESIGN_S,
    MIB,
    S3ObjectStore,
    make_s3_client,
    parse_s3_url,
)
from tests.live_server import free_port
from tests.s3_server import aws_env, moto_s3, s3_client

BUCKET = "paddock-contract"
PART = 5 * MIB  # S3's smallest multipart part (moto enforces it too)
CONTENT_TYPE = "video/mp4"


# -- the two backends ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with aws_env(), moto_s3() as endpoint:
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


class _FilesApp:
    """The facade's `/files/` route alone, served by uvicorn on a free port, for a swappable store."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.app.include_router(files.router)
        self.app.state.files = None

        @self.app.exception_handler(DashScopeError)
        async def dashscope_error(request: Request, exc: DashScopeError) -> JSONResponse:
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

        self.base_url = f"http://127.0.0.1:{free_port()}"
        port = int(self.base_url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def serve(self, store: ObjectStore) -> None:
        # The facade serves only a local store's files (app.state.files is None otherwise).
        self.app.state.files = store if isinstance(store, LocalObjectStore) else None


@pytest.fixture(scope="module")
def files_app() -> Iterator[_FilesApp]:
    served = _FilesApp()
    served.thread.start()
    deadline = time.monotonic() + 30
    while not served.server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield served
    served.server.should_exit = True
    served.thread.join(timeout=10)


@dataclass
class Case:
    """A store under test and how to see what it physically holds."""

    backend: str
    store: ObjectStore
    stored_keys: Callable[[], set[str]]  # the raw names of the objects in the backend


@pytest.fixture(params=["file", "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    if request.param == "file":
        store = LocalObjectStore(tmp_path / "data", "http://unused", Signer(b"k" * 32))
        served: _FilesApp = request.getfixturevalue("files_app")
        store.base_url = served.base_url
        served.serve(store)
        objects = store.root / "objects"
        yield Case(
            "file",
            store,
            lambda: {p.relative_to(objects).as_posix() for p in objects.rglob("*") if p.is_file()},
        )
        return
    endpoint: str = request.getfixturevalue("s3_endpoint")
    prefix = f"pfx-{uuid.uuid4().hex[:8]}"  # each test in its own prefix of the shared bucket
    small_parts = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)
    with aws_env():
        store = S3ObjectStore(
            BUCKET, prefix, client=make_s3_client(endpoint_url=endpoint), transfer_config=small_parts
        )
        raw = s3_client(endpoint)

        def listed() -> set[str]:
            pages = raw.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
            return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

        yield Case("s3", store, listed)


def later(seconds: float = 3600.0) -> float:
    return time.time() + seconds


# -- the contract --------------------------------------------------------------------------------


def test_put_get_exists_overwrite_delete(case: Case) -> None:
    store, key = case.store, "results/task-1/1.mp4"
    assert not store.exists(key)
    store.put_bytes(key, b"first", CONTENT_TYPE, later())
    assert store.exists(key) and store.get_bytes(key) == b"first"
    store.put_bytes(key, b"second, longer", CONTENT_TYPE, later())  # a redelivered job rewrites its key
    assert store.get_bytes(key) == b"second, longer"
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # idempotent


def test_missing_key_is_object_not_found(case: Case) -> None:
    with pytest.raises(ObjectNotFound):
        case.store.get_bytes("results/nope/1.mp4")
    assert not case.store.exists("results/nope/1.mp4")
    case.store.delete("results/nope/1.mp4")


def test_put_file_round_trips(case: Case, tmp_path: Path) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(os.urandom(4096))
    case.store.put_file("results/t/2.mp4", source, CONTENT_TYPE, later())
    assert case.store.get_bytes("results/t/2.mp4") == source.read_bytes()


def test_object_past_its_expiry_reads_as_missing(case: Case) -> None:
    case.store.put_bytes("uploads/old.png", b"stale", "image/png", time.time() - 1)
    assert not case.store.exists("uploads/old.png")
    with pytest.raises(ObjectNotFound):
        case.store.get_bytes("uploads/old.png")
    case.store.put_bytes("uploads/old.png", b"fresh", "image/png", later())  # a rewrite revives the key
    assert case.store.get_bytes("uploads/old.png") == b"fresh"


def test_url_serves_the_bytes_to_a_plain_http_client(case: Case) -> None:
    data = os.urandom(10_000)
    case.store.put_bytes("results/t 3/1.mp4", data, CONTENT_TYPE, later())
    response = httpx.get(case.store.url("results/t 3/1.mp4", later(600)), timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"].startswith(CONTENT_TYPE)


def test_url_stops_working_after_its_expiry(case: Case) -> None:
    case.store.put_bytes("results/t/4.mp4", b"short-lived", CONTENT_TYPE, later())
    expires_at = time.time() + 2
    url = case.store.url("results/t/4.mp4", expires_at)
    assert httpx.get(url, timeout=30).status_code == 200
    time.sleep(max(0.0, expires_at + 1.5 - time.time()))
    gone = httpx.get(url, timeout=30)
    assert gone.status_code == 403
    assert "AccessDenied" in gone.text


def test_large_file_round_trips_in_parts(case: Case, tmp_path: Path) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(os.urandom(2 * PART + 123_457))  # three parts at the test's 5 MiB threshold
    case.store.put_file("results/big/1.mp4", source, CONTENT_TYPE, later())
    assert case.store.get_bytes("results/big/1.mp4") == source.read_bytes()
    big = os.urandom(PART + 1)
    case.store.put_bytes("inputs/big/0.mp4", big, CONTENT_TYPE, later())
    assert case.store.get_bytes("inputs/big/0.mp4") == big
    if isinstance(case.store, S3ObjectStore):
        head = case.store._client.head_object(Bucket=BUCKET, Key=case.store.full_key("results/big/1.mp4"))
        assert head["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag counts its parts


def test_keys_are_stored_under_the_prefix(case: Case) -> None:
    keys = ["results/t/1.mp4", "inputs/t/0.png", "uploads/dashscope-instant/d/2026-11-21/u/cat.png"]
    for key in keys:
        case.store.put_bytes(key, b"x", "application/octet-stream", later())
    prefix = case.store.prefix if isinstance(case.store, S3ObjectStore) else ""
    assert case.stored_keys() == {prefix + key for key in keys}


@pytest.mark.parametrize("bad", ["../escape", "/absolute", "a//b", "a/./b", ""])
def test_invalid_keys_are_refused(case: Case, bad: str) -> None:
    with pytest.raises(ValueError):
        case.store.put_bytes(bad, b"x", "text/plain", later())
    with pytest.raises(ValueError):
        case.store.url(bad, later())


# -- S3 only -------------------------------------------------------------------------------------


@pytest.fixture
def s3_store(s3_endpoint: str) -> Iterator[S3ObjectStore]:
    with aws_env():
        yield S3ObjectStore(BUCKET, "only-s3", client=make_s3_client(endpoint_url=s3_endpoint))


def test_presigned_lifetime_is_clamped_to_one_second_and_seven_days(s3_store: S3ObjectStore) -> None:
    now = time.time()
    assert s3_store.presign_seconds(now - 100) == 1
    assert s3_store.presign_seconds(now + 30 * 86_400) == MAX_PRESIGN_S
    assert 3599 <= s3_store.presign_seconds(now + 3600) <= 3601
    s3_store.put_bytes("results/t/1.mp4", b"ok", CONTENT_TYPE, later())
    far = s3_store.url("results/t/1.mp4", now + 30 * 86_400)
    assert parse_qs(urlsplit(far).query)["X-Amz-Expires"] == [str(MAX_PRESIGN_S)]
    assert httpx.get(far, timeout=30).status_code == 200  # S3 refuses a lifetime over 7 days


def test_public_base_url_gives_cdn_urls(s3_endpoint: str) -> None:
    with aws_env():
        client = make_s3_client(endpoint_url=s3_endpoint)
    store = S3ObjectStore(BUCKET, "/pfx/", client=client, public_base_url="https://cdn.example.com/media/")
    assert store.url("results/t 1/1.mp4", later()) == "https://cdn.example.com/media/pfx/results/t%201/1.mp4"
    bare = S3ObjectStore(BUCKET, "", client=client, public_base_url="https://cdn.example.com")
    assert bare.url("results/t/1.mp4", later()) == "https://cdn.example.com/results/t/1.mp4"


def test_expiry_is_object_metadata(s3_store: S3ObjectStore, s3_endpoint: str) -> None:
    expires_at = later()
    s3_store.put_bytes("results/t/5.mp4", b"meta", CONTENT_TYPE, expires_at)
    head = s3_client(s3_endpoint).head_object(Bucket=BUCKET, Key="only-s3/results/t/5.mp4")
    assert float(head["Metadata"][EXPIRES_META]) == pytest.approx(expires_at)
    assert head["ContentType"] == CONTENT_TYPE
    # An object paddock did not write (no expiry) is left to the lifecycle rule: it reads as present.
    s3_client(s3_endpoint).put_object(Bucket=BUCKET, Key="only-s3/results/t/6.mp4", Body=b"foreign")
    assert s3_store.get_bytes("results/t/6.mp4") == b"foreign"


def test_make_object_store_from_settings(s3_endpoint: str) -> None:
    settings = Settings(storage_url="s3://paddock-contract/from/settings", s3_endpoint_url=s3_endpoint)
    with aws_env():
        store = make_object_store(settings, Signer(b"k"))
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix) == (BUCKET, "from/settings/")
    assert store._client.meta.config.s3["addressing_style"] == "path"  # auto + an endpoint
    store.put_bytes("results/t/1.mp4", b"via settings", CONTENT_TYPE, later())
    url = store.url("results/t/1.mp4", later(60))
    assert url.startswith(f"{s3_endpoint}/{BUCKET}/from/settings/results/t/1.mp4?")
    assert httpx.get(url, timeout=30).content == b"via settings"
    assert not hasattr(store, "sweep")  # the facade's sweeper leaves S3 to the lifecycle rules


def test_parse_s3_url_and_settings_errors() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    for bad in ("s3://", "s3:///prefix", "s3://bucket/a/../b", "file://x"):
        with pytest.raises(ValueError):
            parse_s3_url(bad)
    with pytest.raises(ValueError, match="ADDRESSING_STYLE"):
        make_s3_client(addressing_style="sideways")
