"""Temporary uploads (API.md §5): getPolicy, the SDK's multipart POST, and `oss://` resolution."""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from server.api.uploads.routes import router as uploads_router
from server.api.uploads.service import STORE_PREFIX, UploadService
from server.config import Settings
from server.errors import DashScopeError
from server.keys import KeyRing, Tenant
from server.signing import Signer
from server.storage import LocalObjectStore

KEY_A, KEY_B = "sk-tenant-a", "sk-tenant-b"
TENANT_A, TENANT_B = Tenant(id="team-a"), Tenant(id="team-b")
MODEL = "happyhorse-1.0-i2v"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def build(tmp_path: Path, base_url: str = "http://testserver", **settings: Any) -> SimpleNamespace:
    """The upload service on a local store, two tenants' keys, and a clock the tests move."""
    signer = Signer(b"u" * 32)
    clock = Clock()
    cfg = Settings(public_url=base_url, data_dir=tmp_path, **settings)
    store = LocalObjectStore(tmp_path / "store", cfg.base_url, signer, clock=clock)
    uploads = UploadService(store, signer, cfg, clock=clock)
    keys = KeyRing({KEY_A: TENANT_A, KEY_B: TENANT_B})
    return SimpleNamespace(settings=cfg, store=store, signer=signer, keys=keys, uploads=uploads, clock=clock)


def make_app(services: SimpleNamespace) -> FastAPI:
    app = FastAPI()
    app.state.uploads = services.uploads
    app.state.keys = services.keys
    app.include_router(uploads_router)

    @app.exception_handler(DashScopeError)
    async def render(request: Request, exc: DashScopeError) -> JSONResponse:
        body = {"request_id": "rid", "code": exc.code, "message": exc.message}
        return JSONResponse(body, status_code=exc.status)

    return app


@pytest.fixture
def svc(tmp_path: Path) -> SimpleNamespace:
    return build(tmp_path, max_upload_mb=1)


@pytest.fixture
def client(svc: SimpleNamespace) -> TestClient:
    return TestClient(make_app(svc))


def get_policy(client: TestClient, key: str = KEY_A) -> dict[str, Any]:
    response = client.get(
        "/api/v1/uploads",
        params={"action": "getPolicy", "model": MODEL},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"request_id", "data"}
    return body["data"]  # type: ignore[no-any-return]


def sdk_form(info: dict[str, Any], filename: str = "frame.png") -> dict[str, str]:
    """The form fields exactly as `dashscope.utils.oss_utils.OssUtils.upload` builds them."""
    return {
        "OSSAccessKeyId": info["oss_access_key_id"],
        "Signature": info["signature"],
        "policy": info["policy"],
        "key": info["upload_dir"] + "/" + os.path.basename(filename),
        "x-oss-object-acl": info["x_oss_object_acl"],
        "x-oss-forbid-overwrite": info["x_oss_forbid_overwrite"],
        "success_action_status": "200",
        "x-oss-content-type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
    }


def post_upload(client: TestClient, info: dict[str, Any], form: dict[str, str], data: bytes = PNG):
    path = urlsplit(info["upload_host"]).path
    return client.post(path, data=form, files={"file": ("frame.png", data)})


def assert_error(response, status: int, code: str, needle: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and "request_id" in body
    assert needle.lower() in body["message"].lower()


# -- getPolicy -----------------------------------------------------------------------------------


def test_policy_shape(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client)
    assert set(info) >= {
        "policy", "signature", "upload_dir", "upload_host", "expire_in_seconds", "max_file_size_mb",
        "capacity_limit_mb", "oss_access_key_id", "x_oss_object_acl", "x_oss_forbid_overwrite",
    }  # fmt: skip
    assert info["upload_host"] == "http://testserver/api/v1/uploads/oss"
    assert info["upload_dir"].startswith(svc.uploads.tenant_prefix(TENANT_A))
    assert "team-a" not in info["upload_dir"]
    assert info["max_file_size_mb"] == 1 and info["expire_in_seconds"] == 300
    assert (info["oss_access_key_id"], info["x_oss_object_acl"], info["x_oss_forbid_overwrite"]) == (
        "paddock", "private", "true",
    )  # fmt: skip
    document = json.loads(base64.b64decode(info["policy"]))
    assert document["expiration"].endswith("Z")
    assert ["starts-with", "$key", info["upload_dir"] + "/"] in document["conditions"]
    assert ["content-length-range", 0, 1024 * 1024] in document["conditions"]
    assert get_policy(client)["upload_dir"] != info["upload_dir"]  # a fresh folder per policy


def test_policy_needs_a_key(client: TestClient) -> None:
    params = {"action": "getPolicy", "model": MODEL}
    assert_error(client.get("/api/v1/uploads", params=params), 401, "InvalidApiKey")
    response = client.get("/api/v1/uploads", params=params, headers={"Authorization": "Bearer sk-wrong"})
    assert_error(response, 401, "InvalidApiKey")


def test_policy_bad_action_or_model(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY_A}"}
    response = client.get("/api/v1/uploads", params={"action": "listFiles", "model": MODEL}, headers=auth)
    assert_error(response, 400, "InvalidParameter", "getPolicy")
    assert_error(
        client.get("/api/v1/uploads", params={"model": MODEL}, headers=auth), 400, "InvalidParameter"
    )
    response = client.get("/api/v1/uploads", params={"action": "getPolicy"}, headers=auth)
    assert response.status_code == 400


# -- upload round trip ---------------------------------------------------------------------------


def test_round_trip(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client)
    form = sdk_form(info)
    response = post_upload(client, info, form)  # no Authorization, exactly like the SDK
    assert response.status_code == 200, response.text
    oss_url = "oss://" + form["key"]
    assert svc.store.exists(STORE_PREFIX + form["key"])
    assert svc.store.open_for_serving(STORE_PREFIX + form["key"])[1] == "image/png"
    assert svc.uploads.resolve(oss_url, TENANT_A, max_bytes=10**6) == PNG
    # The SDK reuses one certificate for every file of a call.
    second = sdk_form(info, "other.jpg")
    assert post_upload(client, info, second, b"jpeg").status_code == 200
    assert svc.uploads.resolve("oss://" + second["key"], TENANT_A, max_bytes=10) == b"jpeg"


def test_uploads_expire_after_ttl(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client)
    form = sdk_form(info)
    assert post_upload(client, info, form).status_code == 200
    svc.clock.now += svc.settings.upload_ttl_s - 1
    assert svc.uploads.resolve("oss://" + form["key"], TENANT_A, max_bytes=10**6) == PNG
    svc.clock.now += 2
    with pytest.raises(DashScopeError) as err:
        svc.uploads.resolve("oss://" + form["key"], TENANT_A, max_bytes=10**6)
    assert err.value.code == "InvalidURL" and "expired" in err.value.message


def test_success_action_status_204(client: TestClient) -> None:
    info = get_policy(client)
    form = sdk_form(info) | {"success_action_status": "204"}
    response = post_upload(client, info, form)
    assert response.status_code == 204 and response.content == b""


def test_wrong_signature(client: TestClient) -> None:
    info = get_policy(client)
    form = sdk_form(info) | {"Signature": Signer(b"other").sign("upload-policy", info["policy"])}
    assert_error(post_upload(client, info, form), 403, "AccessDenied", "signature")


def test_policy_from_another_tenant_cannot_be_rewritten(client: TestClient) -> None:
    """Swapping the policy (e.g. to widen upload_dir) breaks the signature."""
    info = get_policy(client)
    document = json.loads(base64.b64decode(info["policy"]))
    document["conditions"][0][2] = "dashscope-instant/"
    forged = base64.b64encode(json.dumps(document).encode()).decode()
    form = sdk_form(info) | {"policy": forged, "key": "dashscope-instant/x/y.png"}
    assert_error(post_upload(client, info, form), 403, "AccessDenied", "signature")


def test_expired_policy(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client)
    svc.clock.now += info["expire_in_seconds"] + 1
    assert_error(post_upload(client, info, sdk_form(info)), 403, "AccessDenied", "expired")


@pytest.mark.parametrize(
    "key",
    ["dashscope-instant/elsewhere/frame.png", "{dir}", "{dir}/../../other/frame.png", "{dir}x/frame.png"],
)
def test_key_outside_upload_dir(client: TestClient, key: str) -> None:
    info = get_policy(client)
    form = sdk_form(info) | {"key": key.format(dir=info["upload_dir"])}
    assert_error(post_upload(client, info, form), 403, "AccessDenied", "upload_dir")


@pytest.mark.parametrize("name", ["a\\b.png", "", "sub//x.png", "./x.png"])
def test_invalid_key_names(client: TestClient, name: str) -> None:
    info = get_policy(client)
    form = sdk_form(info) | {"key": info["upload_dir"] + "/" + name}
    assert_error(post_upload(client, info, form), 400, "InvalidParameter")


def test_oversize_file(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client)
    form = sdk_form(info)
    assert_error(
        post_upload(client, info, form, b"x" * (1024 * 1024 + 1)), 400, "InvalidParameter", "too large"
    )
    assert not svc.store.exists(STORE_PREFIX + form["key"])
    assert post_upload(client, info, form, b"x" * (1024 * 1024)).status_code == 200


def test_forbid_overwrite(client: TestClient) -> None:
    info = get_policy(client)
    form = sdk_form(info)
    assert post_upload(client, info, form).status_code == 200
    assert_error(post_upload(client, info, form, b"new"), 409, "FileAlreadyExists")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"OSSAccessKeyId": "LTAI-someone"}, 403, "AccessDenied"),
        ({"x-oss-object-acl": "public-read"}, 400, "InvalidParameter"),
        ({"x-oss-forbid-overwrite": "false"}, 400, "InvalidParameter"),
        ({"policy": ""}, 400, "InvalidParameter"),
    ],
)
def test_form_fields_checked(client: TestClient, change: dict[str, str], status: int, code: str) -> None:
    info = get_policy(client)
    assert_error(post_upload(client, info, sdk_form(info) | change), status, code)


def test_missing_file_part_and_not_multipart(client: TestClient) -> None:
    info = get_policy(client)
    response = client.post("/api/v1/uploads/oss", data=sdk_form(info))
    assert_error(response, 400, "InvalidParameter", "file")
    response = client.post(
        "/api/v1/uploads/oss",
        content=b"--x\r\nbroken",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert_error(response, 400, "InvalidParameter")
    files = [("file", ("a.png", b"a")), ("file", ("b.png", b"b"))]
    response = client.post("/api/v1/uploads/oss", data=sdk_form(info), files=files)
    assert_error(response, 400, "InvalidParameter", "multipart")


def test_odd_content_type_is_not_stored(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client)
    form = sdk_form(info) | {"x-oss-content-type": "text/html\r\nSet-Cookie: x=y"}
    assert post_upload(client, info, form).status_code == 200
    assert svc.store.open_for_serving(STORE_PREFIX + form["key"])[1] == "application/octet-stream"


# -- resolve -------------------------------------------------------------------------------------


def test_other_tenant_cannot_resolve(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client, KEY_A)
    form = sdk_form(info)
    assert post_upload(client, info, form).status_code == 200
    with pytest.raises(DashScopeError) as err:
        svc.uploads.resolve("oss://" + form["key"], TENANT_B, max_bytes=10**6)
    assert err.value.code == "InvalidURL" and err.value.status == 400
    assert "not uploaded to this server" in err.value.message


@pytest.mark.parametrize(
    "url",
    ["oss://{prefix}2024-01-01/none/x.png", "oss://{prefix}../../etc/passwd", "http://x/y.png", "oss://"],
)
def test_resolve_refuses(svc: SimpleNamespace, url: str) -> None:
    with pytest.raises(DashScopeError) as err:
        svc.uploads.resolve(url.format(prefix=svc.uploads.tenant_prefix(TENANT_A)), TENANT_A, max_bytes=10)
    assert err.value.code == "InvalidURL"


def test_resolve_size_cap(client: TestClient, svc: SimpleNamespace) -> None:
    info = get_policy(client)
    form = sdk_form(info)
    assert post_upload(client, info, form).status_code == 200
    with pytest.raises(DashScopeError) as err:
        svc.uploads.resolve("oss://" + form["key"], TENANT_A, max_bytes=10)
    assert err.value.code == "InvalidParameter"


def test_tenant_prefix_is_stable_and_distinct(svc: SimpleNamespace) -> None:
    assert svc.uploads.tenant_prefix(TENANT_A) == svc.uploads.tenant_prefix(Tenant(id="team-a"))
    assert svc.uploads.tenant_prefix(TENANT_A) != svc.uploads.tenant_prefix(TENANT_B)


# -- the real dashscope SDK against a real server ------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    port = free_port()
    services = build(tmp_path, base_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(make_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", f"http://127.0.0.1:{port}/api/v1")
    yield services
    server.should_exit = True
    thread.join(timeout=10)


def test_real_sdk_upload(live: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dashscope = pytest.importorskip("dashscope")
    from dashscope.utils.oss_utils import OssUtils, check_and_upload_local

    monkeypatch.setattr(dashscope, "base_http_api_url", live.settings.base_url + "/api/v1")
    image = tmp_path / "first frame.png"
    image.write_bytes(PNG)

    oss_url, certificate = OssUtils.upload(model=MODEL, file_path=str(image), api_key=KEY_A)
    assert oss_url.startswith("oss://dashscope-instant/") and oss_url.endswith("/first frame.png")
    assert live.uploads.resolve(oss_url, TENANT_A, max_bytes=10**6) == PNG

    other = tmp_path / "clip.mp4"
    other.write_bytes(b"mp4 bytes")
    uploaded, url, _ = check_and_upload_local(MODEL, f"file://{other}", KEY_A, certificate)
    assert uploaded and url.startswith("oss://")
    assert live.uploads.resolve(url, TENANT_A, max_bytes=10**6) == b"mp4 bytes"
    assert live.store.open_for_serving(STORE_PREFIX + url[len("oss://") :])[1] == "video/mp4"
    with pytest.raises(DashScopeError):
        live.uploads.resolve(url, TENANT_B, max_bytes=10**6)


def test_real_sdk_bad_key(live: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dashscope = pytest.importorskip("dashscope")
    from dashscope.common.error import UploadFileException
    from dashscope.utils.oss_utils import OssUtils

    monkeypatch.setattr(dashscope, "base_http_api_url", live.settings.base_url + "/api/v1")
    image = tmp_path / "x.png"
    image.write_bytes(PNG)
    with pytest.raises(UploadFileException, match="InvalidApiKey"):
        OssUtils.upload(model=MODEL, file_path=str(image), api_key="sk-nope")
