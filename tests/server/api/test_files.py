"""`GET|HEAD /files/{key}`: signed, expiring, range-capable downloads from the local store."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from server.api.files import router
from server.errors import DashScopeError
from server.signing import Signer
from server.storage import LocalObjectStore

DATA = bytes(range(256)) * 40  # 10240 bytes


def make_app(store: object) -> FastAPI:
    """The files router plus the DashScope error rendering the real app uses."""
    app = FastAPI()
    # As create_app does: only a local store's files are served.
    app.state.files = store if isinstance(store, LocalObjectStore) else None
    app.include_router(router)

    @app.exception_handler(DashScopeError)
    async def render(request: Request, exc: DashScopeError) -> JSONResponse:
        body = {"request_id": "rid", "code": exc.code, "message": exc.message}
        return JSONResponse(body, status_code=exc.status)

    return app


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path, "http://testserver", Signer(b"s" * 32))


@pytest.fixture
def client(store: LocalObjectStore) -> TestClient:
    return TestClient(make_app(store))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def url(store: LocalObjectStore) -> str:
    store.put_bytes("results/task-1/0.mp4", DATA, "video/mp4", time.time() + 3600)
    return path_of(store.url("results/task-1/0.mp4", time.time() + 600))


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["message"] and "request_id" in body


def test_signed_url_serves_the_object(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["cache-control"].startswith("private")


def test_key_with_spaces_and_unicode(client: TestClient, store: LocalObjectStore) -> None:
    key = "uploads/dir/my frame é.png"
    store.put_bytes(key, b"png", "image/png", time.time() + 60)
    response = client.get(path_of(store.url(key, time.time() + 60)))
    assert response.status_code == 200 and response.content == b"png"


def test_head(client: TestClient, url: str) -> None:
    response = client.head(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len(DATA) - 1),
        ("bytes=-10", len(DATA) - 10, len(DATA) - 1),
        ("bytes=10000-99999", 10000, len(DATA) - 1),
        ("bytes=-99999", 0, len(DATA) - 1),
    ],
)
def test_ranges(client: TestClient, url: str, header: str, start: int, end: int) -> None:
    response = client.get(url, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start + 1)


def test_range_on_head(client: TestClient, url: str) -> None:
    response = client.head(url, headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-9/{len(DATA)}"
    assert response.content == b""


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", "bytes=20000-20010", "bytes=-0"])
def test_unsatisfiable_range(client: TestClient, url: str, header: str) -> None:
    response = client.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


def test_tampered_signature(client: TestClient, url: str) -> None:
    base, sig = url.rsplit("sig=", 1)
    tampered = base + "sig=" + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert_error(client.get(tampered), 403, "AccessDenied")
    assert_error(client.get(url.replace("task-1", "task-2")), 403, "AccessDenied")


def test_missing_signature(client: TestClient) -> None:
    assert_error(client.get("/files/results/task-1/0.mp4"), 403, "AccessDenied")
    assert_error(client.get("/files/results/task-1/0.mp4?expires=abc&sig=x"), 403, "AccessDenied")


def test_extended_expiry_refused(client: TestClient, url: str) -> None:
    expires = url.split("expires=")[1].split("&")[0]
    assert_error(client.get(url.replace(expires, str(int(expires) + 10_000))), 403, "AccessDenied")


def test_expired_url(client: TestClient, store: LocalObjectStore) -> None:
    store.put_bytes("k.mp4", DATA, "video/mp4", time.time() + 3600)
    assert_error(client.get(path_of(store.url("k.mp4", time.time() - 1))), 403, "AccessDenied")


def test_deleted_or_expired_object(client: TestClient, store: LocalObjectStore, url: str) -> None:
    store.delete("results/task-1/0.mp4")
    assert_error(client.get(url), 404, "NotFound")
    store.put_bytes("old.mp4", DATA, "video/mp4", time.time() - 1)
    assert_error(client.get(path_of(store.url("old.mp4", time.time() + 60))), 404, "NotFound")


def test_traversal_paths_do_not_escape(client: TestClient, store: LocalObjectStore, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("no")
    for path in ("/files/../secret.txt", "/files/%2E%2E/secret.txt", "/files/a%2F..%2F..%2Fsecret.txt"):
        response = client.get(path + "?expires=9999999999&sig=x")
        assert response.status_code in (403, 404)
        assert response.content != b"no"


def test_not_a_local_store() -> None:
    client = TestClient(make_app(object()))
    assert_error(client.get("/files/a?expires=1&sig=x"), 404, "NotFound")


def test_signed_traversal_key_still_refused(client: TestClient, tmp_path: Path) -> None:
    """Even a correctly signed `..` key (impossible without the secret) reads nothing outside."""
    (tmp_path / "secret.txt").write_text("no")
    expires = str(int(time.time()) + 60)
    sig = Signer(b"s" * 32).sign("file", "../secret.txt", expires)
    response = client.get(f"/files/%2E%2E%2Fsecret.txt?expires={expires}&sig={sig}")
    assert_error(response, 404, "NotFound")
