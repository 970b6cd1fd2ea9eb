"""The web UI's routes: the page and its files, the model catalogue, the operators' view."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from model.registry import default_registry
from server.api import schemas
from server.api.app import create_app
from server.api.web.routes import STATIC_DIR
from server.config import Settings
from server.errors import InvalidParameter
from server.jobs.base import TaskQueue
from server.keys import KeyRing, Tenant
from tests.redis_server import QueueFactory
from tests.support.facade import assert_error, facade, headers, make_settings

ADMIN, USER, NARROW = "sk-web-admin", "sk-web-user", "sk-web-narrow"
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
T2V = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}, "parameters": {"duration": 3}}


def keyring() -> KeyRing:
    return KeyRing(
        {
            ADMIN: Tenant(id="ops", admin=True),
            USER: Tenant(id="user"),
            NARROW: Tenant(id="narrow", models=frozenset({"happyhorse-1.0-i2v"})),
        }
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with facade(create_app(make_settings(tmp_path), keys=keyring())) as c:
        yield c


# -- the page and its files --------------------------------------------------------------------
async def test_the_page_is_served_at_the_root_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<label for="api-key">API key</label>' in page.text


async def test_every_file_the_page_loads_is_served_by_this_server(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    refs = set(re.findall(r'(?:src|href)="([^"]+)"', page))
    assert refs, "the page loads nothing?"
    for ref in refs - {"data:,", "#", "#generate-heading"}:
        assert ref.startswith("/static/"), ref
    imported = {
        f"/static/{name}"
        for path in STATIC_DIR.glob("*.js")
        for name in re.findall(r'from "\./([\w.-]+)"', path.read_text())
    }
    expected = {"text/javascript; charset=utf-8", "text/css; charset=utf-8", "image/jpeg"}
    for ref in sorted((refs | imported | {"/static/sample.jpg"}) - {"data:,", "#", "#generate-heading"}):
        answer = await client.get(ref)
        assert answer.status_code == 200 and answer.headers["content-type"] in expected, ref
    for path in STATIC_DIR.iterdir():
        if path.suffix in (".html", ".js", ".css"):
            assert not re.search(r"https?://", path.read_text()), f"{path.name} names another host"


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2Fsample.py", "/static/%2e%2e%2Froutes.py"])
async def test_anything_else_under_static_is_not_found(client: httpx.AsyncClient, path: str) -> None:
    assert_error(await client.get(path), 404, "NotFound")


# -- the model catalogue -------------------------------------------------------------------------
async def test_the_catalogue_needs_a_key(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/web/models"), 401, "InvalidApiKey", "No API-key provided.")
    assert_error(await client.get("/web/models", headers=headers("sk-nobody")), 401, "InvalidApiKey")


async def test_the_catalogue_lists_the_models_a_key_may_use(client: httpx.AsyncClient) -> None:
    everything = (await client.get("/web/models", headers=headers(USER))).json()
    assert [m["name"] for m in everything["models"]] == sorted(default_registry())
    assert everything["admin"] is False
    narrow = (await client.get("/web/models", headers=headers(NARROW))).json()
    assert [m["name"] for m in narrow["models"]] == ["happyhorse-1.0-i2v"]
    assert (await client.get("/web/models", headers=headers(ADMIN))).json()["admin"] is True


def _minimal_body(entry: dict[str, Any]) -> dict[str, Any]:
    media = [
        {"type": m["type"], "url": "https://example.invalid/x"}
        for m in entry["media"]
        for _ in range(m["min"])
    ]
    return {"model": entry["name"], "input": {"prompt": "a horse", "media": media}, "parameters": {}}


async def test_the_catalogue_states_what_the_api_applies(client: httpx.AsyncClient) -> None:
    """The form's defaults and choices are the ones `parse_create` applies to a bare request."""
    registry = default_registry()
    for entry in (await client.get("/web/models", headers=headers(USER))).json()["models"]:
        spec = registry[entry["name"]]
        parsed = schemas.parse_create(_minimal_body(entry), spec)
        params = entry["parameters"]
        assert parsed.resolution == params["resolution"]["default"]
        assert params["resolution"]["choices"] == list(schemas.RESOLUTIONS)
        assert parsed.ratio == (params["ratio"] and params["ratio"]["default"])
        assert parsed.audio_setting == (params["audio_setting"] or {"default": "auto"})["default"]
        if params["duration"] is None:
            assert parsed.duration == 0  # video-edit: the output follows the input video
        else:
            assert parsed.duration == params["duration"]["default"]
            for bad in (params["duration"]["min"] - 1, params["duration"]["max"] + 1):
                body = _minimal_body(entry) | {"parameters": {"duration": bad}}
                with pytest.raises(InvalidParameter):
                    schemas.parse_create(body, spec)
        counts = {m["type"]: (m["min"], m["max"]) for m in entry["media"]}
        assert counts == schemas.MEDIA_TYPES[spec.family]
        assert entry["prompt_required"] == (spec.family in schemas.PROMPT_REQUIRED)


async def test_the_rules_are_the_servers(client: httpx.AsyncClient) -> None:
    models = {m["name"]: m for m in (await client.get("/web/models", headers=headers(USER))).json()["models"]}
    first_frame = models["happyhorse-1.0-i2v"]["media"][0]["rule"]
    assert first_frame == {
        "kind": "image",
        "formats": ["jpeg", "png", "webp"],
        "min_width": 300,
        "min_height": 300,
        "min_short_side": 0,
        "min_aspect": 0.4,
        "max_aspect": 2.5,
        "max_bytes": 20 * 1024 * 1024,
        "max_pixels": Settings().max_image_pixels,
    }
    reference = models["happyhorse-1.0-r2v"]["media"][0]["rule"]
    assert (reference["min_short_side"], reference["max_aspect"]) == (400, None)  # no aspect limit
    video = next(m["rule"] for m in models["happyhorse-1.0-video-edit"]["media"] if m["type"] == "video")
    assert (video["min_duration_s"], video["max_duration_s"], video["min_short_side"]) == (3.0, 60.0, 360)


# -- the operators' view -------------------------------------------------------------------------
async def test_the_operators_view_is_for_admin_keys(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/web/operator"), 401, "InvalidApiKey")
    assert_error(await client.get("/web/operator", headers=headers(USER)), 403, "AccessDenied", "admin: true")
    view = (await client.get("/web/operator", headers=headers(ADMIN))).json()
    assert view == {
        "queue_depth": 0,
        "workers_ready": 0,
        "workers": [],
        "running": {},
        "running_total": 0,
        "failures": {"window_s": 3600, "by_code": {}},
    }


async def test_the_operators_view_reads_what_workers_wrote_to_the_shared_queue(
    tmp_path: Path, queue_backend: str, make_queue: QueueFactory
) -> None:
    """As with `paddock api` + `paddock worker`: the worker writes through its own client (on
    Redis, its own connections), and the facade shows the numbers."""
    facade_queue = make_queue()
    worker: TaskQueue = facade_queue if queue_backend == "memory" else make_queue()
    app = create_app(make_settings(tmp_path), keys=keyring(), queue=facade_queue)
    async with facade(app) as c:
        for _ in range(3):
            assert (await c.post(CREATE, json=T2V, headers=headers(USER))).status_code == 200
        await worker.announce("gpu-node-1", ["happyhorse-1.0-t2v", "happyhorse-1.0-i2v"], ttl_s=30)
        running = await worker.claim("gpu-node-1", timeout_s=1)
        failing = await worker.claim("gpu-node-1", timeout_s=1)
        assert running is not None and failing is not None
        assert await worker.fail(failing, code="InternalError.Algo", message="the model raised")
        view = (await c.get("/web/operator", headers=headers(ADMIN))).json()
    assert view["queue_depth"] == 1
    assert view["workers_ready"] == 1
    assert view["workers"] == [{"name": "gpu-node-1", "models": ["happyhorse-1.0-i2v", "happyhorse-1.0-t2v"]}]
    assert view["running"] == {"happyhorse-1.0-t2v": 1} and view["running_total"] == 1
    assert view["failures"]["by_code"] == {"InternalError.Algo": 1}
