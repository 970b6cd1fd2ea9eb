"""Every error row of API.md §4 a request can trigger, plus create/query/list/cancel bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.bigimages import bomb_png
from tests.support.facade import ALICE, BOB, assert_error, facade, headers
from tests.videos import data_uri, make_image

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
LEGACY = "/api/v1/services/aigc/image2video/video-synthesis"


def t2v(**params: Any) -> dict[str, Any]:
    return {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}, "parameters": params}


def i2v(url: str, **params: Any) -> dict[str, Any]:
    return {
        "model": "happyhorse-1.0-i2v",
        "input": {"media": [{"type": "first_frame", "url": url}]},
        "parameters": params,
    }


async def test_create_returns_pending_task(client: httpx.AsyncClient) -> None:
    response = await client.post(CREATE, json=t2v(), headers=headers())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"request_id", "output"}
    assert body["output"]["task_status"] == "PENDING"
    query = await client.get(f"/api/v1/tasks/{body['output']['task_id']}", headers=headers())
    out = query.json()["output"]
    assert out["task_status"] == "PENDING" and "submit_time" in out and "end_time" not in out


async def test_sdk_extras_are_accepted(client: httpx.AsyncClient) -> None:
    body = {
        "model": "happyhorse-1.0-i2v",
        "input": {
            "prompt": None,
            "extend_prompt": True,
            "function": "video-synthesis",
            "unknown": 1,
            "media": [{"type": "first_frame", "url": data_uri(make_image(400, 400))}],
        },
        "parameters": {},
    }
    assert (await client.post(CREATE, json=body, headers=headers())).status_code == 200
    body = t2v(prompt_extend=True, something_new="x")
    assert (await client.post(CREATE, json=body, headers=headers())).status_code == 200


async def test_legacy_img_url_is_a_first_frame(client: httpx.AsyncClient) -> None:
    body = {"model": "happyhorse-1.0-i2v", "input": {"img_url": data_uri(make_image(400, 300))}}
    assert (await client.post(CREATE, json=body, headers=headers())).status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (t2v(resolution="720p"), "parameters.resolution"),
        (t2v(ratio="2:1"), "parameters.ratio"),
        (t2v(duration=16), "parameters.duration must be between 3 and 15"),
        (t2v(duration=2), "parameters.duration"),
        (t2v(duration="5"), "parameters.duration must be an integer"),
        (t2v(duration=True), "parameters.duration must be an integer"),
        (t2v(seed=-1), "parameters.seed"),
        (t2v(seed=2147483648), "parameters.seed"),
        (t2v(watermark="yes"), "parameters.watermark"),
        ({"model": "happyhorse-1.0-t2v", "input": {"prompt": ""}}, "input.prompt is required"),
        ({"model": "happyhorse-1.0-t2v", "input": {"prompt": 5}}, "input.prompt must be a string"),
        ({"model": "happyhorse-1.0-t2v", "input": "text"}, "input must be a JSON object"),
        ({"model": "happyhorse-1.0-t2v", "input": {"prompt": "x"}, "parameters": []}, "parameters must be"),
        ({"model": "happyhorse-1.0-i2v", "input": {"prompt": "x"}}, "exactly 1 first_frame, got 0"),
        ({"model": "happyhorse-1.0-r2v", "input": {"prompt": "x"}}, "1 to 9 reference_image, got 0"),
        ({"model": "happyhorse-1.0-video-edit", "input": {"prompt": "x"}}, "exactly 1 video, got 0"),
        (
            {
                "model": "happyhorse-1.0-t2v",
                "input": {"prompt": "x", "media": [{"type": "first_frame", "url": "x"}]},
            },
            "not supported by t2v",
        ),
        ({"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame"}]}}, "url is required"),
        ({"model": "happyhorse-1.0-i2v", "input": {"media": "x"}}, "input.media must be a list"),
        (
            {
                "model": "happyhorse-1.0-video-edit",
                "input": {"prompt": "x", "media": [{"type": "video", "url": "data:image/png;base64,AA"}]},
            },
            "input.media[0] (video)",
        ),
    ],
)
async def test_invalid_parameter(client: httpx.AsyncClient, body: dict[str, Any], fragment: str) -> None:
    assert_error(await client.post(CREATE, json=body, headers=headers()), 400, _code_for(fragment), fragment)


def _code_for(fragment: str) -> str:
    return "InvalidURL" if fragment == "input.media[0] (video)" else "InvalidParameter"


async def test_too_many_references(client: httpx.AsyncClient) -> None:
    refs = [{"type": "reference_image", "url": "https://example.com/a.png"}] * 10
    body = {"model": "happyhorse-1.0-r2v", "input": {"prompt": "x", "media": refs}}
    assert_error(await client.post(CREATE, json=body, headers=headers()), 400, "InvalidParameter", "got 10")


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(CREATE, content=b"{not json", headers=headers())
    assert_error(response, 400, "InvalidParameter", "not valid JSON")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ('"duration":NaN', "parameters.duration must be an integer, got NaN"),
        ('"duration":Infinity', "parameters.duration must be an integer, got Infinity"),
        ('"seed":-Infinity', "parameters.seed must be an integer, got -Infinity"),
        ('"seed":1e400', "parameters.seed must be an integer, got Infinity"),
        ('"duration":-1e400', "parameters.duration must be an integer"),
        ('"seed":' + "9" * 5000, "parameters.seed must be between 0 and 2147483647, got a 5000-digit number"),
        ('"duration":' + "1" * 40, "parameters.duration must be between 3 and 15"),
    ],
)
async def test_malformed_numbers_name_the_field(client: httpx.AsyncClient, raw: str, fragment: str) -> None:
    body = '{"model":"happyhorse-1.0-t2v","input":{"prompt":"x"},"parameters":{' + raw + "}}"
    response = await client.post(CREATE, content=body.encode(), headers=headers())
    assert_error(response, 400, "InvalidParameter", fragment)


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_deep_nesting_is_a_400(client: httpx.AsyncClient, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    response = await client.post(CREATE, content=body, headers=headers())
    assert_error(response, 400, "InvalidParameter", "nested")


async def test_prompt_is_cut_before_it_is_stored(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory()
    async with facade(app) as client:
        body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "ab" * 1_000_000}}
        created = await client.post(CREATE, json=body, headers=headers())
        assert created.status_code == 200
        record = await app.state.tasks.queue.get(created.json()["output"]["task_id"])
    assert len(record.spec.prompt) == 5000 and record.orig_prompt == record.spec.prompt


async def test_empty_model_and_input(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.post(CREATE, json={"input": {"prompt": "x"}}, headers=headers()),
        400,
        "BadRequest.EmptyModel",
    )
    assert_error(
        await client.post(CREATE, json={"model": "", "input": {}}, headers=headers()),
        400,
        "BadRequest.EmptyModel",
    )
    body = {"model": "happyhorse-1.0-t2v"}
    assert_error(await client.post(CREATE, json=body, headers=headers()), 400, "BadRequest.EmptyInput")


async def test_unknown_model_and_wrong_path(client: httpx.AsyncClient) -> None:
    body = {"model": "wanx-unknown", "input": {"prompt": "x"}}
    assert_error(
        await client.post(CREATE, json=body, headers=headers()),
        400,
        "InvalidParameter",
        "url error, please check url!",
    )
    assert_error(
        await client.post(LEGACY, json=t2v(), headers=headers()),
        400,
        "InvalidParameter",
        "url error, please check url!",
    )


async def test_auth_errors(client: httpx.AsyncClient) -> None:
    response = await client.post(CREATE, json=t2v(), headers={"X-DashScope-Async": "enable"})
    assert_error(response, 401, "InvalidApiKey", "No API-key provided.")
    response = await client.post(CREATE, json=t2v(), headers=headers("sk-nobody"))
    assert_error(response, 401, "InvalidApiKey", "Invalid API-key provided.")
    assert_error(await client.get("/api/v1/tasks/x"), 401, "InvalidApiKey")
    assert_error(await client.get("/api/v1/tasks"), 401, "InvalidApiKey")
    assert_error(await client.post("/api/v1/tasks/x/cancel"), 401, "InvalidApiKey")


async def test_missing_async_header_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post(CREATE, json=t2v(), headers={"Authorization": f"Bearer {ALICE}"})
    assert_error(response, 403, "AccessDenied", "current user api does not support synchronous calls")


async def test_key_without_rights_to_model_is_403(app_factory: Callable[..., FastAPI], tmp_path: Any) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - key: sk-limited\n    tenant: limited\n    models: [happyhorse-1.0-i2v]\n")
    async with facade(app_factory(api_keys=str(keys))) as c:
        response = await c.post(CREATE, json=t2v(), headers=headers("sk-limited"))
        assert_error(response, 403, "AccessDenied", "happyhorse-1.0-t2v")


async def test_media_url_refusals(client: httpx.AsyncClient) -> None:
    for url in (
        "http://127.0.0.1:9/x.png",
        "http://localhost/x.png",
        "file:///etc/passwd",
        "ftp://example.com/x.png",
        "http://169.254.169.254/latest/meta-data",
    ):
        assert_error(await client.post(CREATE, json=i2v(url), headers=headers()), 400, "InvalidURL")
    response = await client.post(CREATE, json=i2v("oss://dashscope-instant/x.png"), headers=headers())
    assert_error(response, 400, "InvalidURL", "X-DashScope-OssResourceResolve")


async def test_media_rules_are_named(client: httpx.AsyncClient) -> None:
    small = data_uri(make_image(200, 600))
    assert_error(
        await client.post(CREATE, json=i2v(small), headers=headers()), 400, "InvalidParameter", "300"
    )
    wide = data_uri(make_image(1300, 400))
    assert_error(
        await client.post(CREATE, json=i2v(wide), headers=headers()), 400, "InvalidParameter", "aspect"
    )
    gif = data_uri(make_image(400, 400, fmt="GIF"), "image/png")
    assert_error(await client.post(CREATE, json=i2v(gif), headers=headers()), 400, "InvalidParameter", "PNG")


async def test_download_failure_is_data_inspection(
    app_factory: Callable[..., FastAPI], httpserver_url: str
) -> None:
    async with facade(app_factory(media_allow_private=True)) as c:
        response = await c.post(CREATE, json=i2v(f"{httpserver_url}/missing.png"), headers=headers())
        assert_error(response, 400, "InvalidParameter.DataInspection")


async def test_cancel_rules(client: httpx.AsyncClient) -> None:
    task_id = (await client.post(CREATE, json=t2v(), headers=headers())).json()["output"]["task_id"]
    assert_error(
        await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=headers(BOB)),
        400,
        "UnsupportedOperation",
    )
    ok = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=headers())
    assert ok.status_code == 200 and set(ok.json()) == {"request_id"}
    again = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=headers())
    assert_error(
        again,
        400,
        "UnsupportedOperation",
        "Failed to cancel the task, please confirm if the task is in PENDING status.",
    )
    out = (await client.get(f"/api/v1/tasks/{task_id}", headers=headers())).json()["output"]
    assert out["task_status"] == "CANCELED" and "end_time" in out


async def test_unknown_task_is_unknown_with_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tasks/does-not-exist", headers=headers())
    assert response.status_code == 200
    assert response.json()["output"] == {"task_id": "does-not-exist", "task_status": "UNKNOWN"}


async def test_list_validation(client: httpx.AsyncClient) -> None:
    bad = [("start_time", "2026-01-01"), ("page_size", "0"), ("page_no", "x"), ("status", "DONE")]
    for name, value in bad:
        assert_error(
            await client.get("/api/v1/tasks", params={name: value}, headers=headers()),
            400,
            "InvalidParameter",
            name,
        )
    span = {"start_time": "20261101000000", "end_time": "20261102000001"}
    assert_error(
        await client.get("/api/v1/tasks", params=span, headers=headers()), 400, "InvalidParameter", "24 hours"
    )


async def test_list_body_shape(client: httpx.AsyncClient) -> None:
    await client.post(CREATE, json=t2v(), headers=headers())
    body = (await client.get("/api/v1/tasks", headers=headers())).json()
    assert {"request_id", "total", "total_page", "page_no", "page_size", "data", "tasks"} <= set(body)
    assert "output" not in body and body["data"] == body["tasks"]
    item = body["data"][0]
    assert item["status"] == "PENDING" and "task_status" not in item
    assert isinstance(item["gmt_create"], int)


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/nothing", headers=headers()), 404, "NotFound")
    not_allowed = await client.get(CREATE, headers=headers())
    assert_error(not_allowed, 405, "MethodNotAllowed")
    assert not_allowed.headers["allow"] == "POST"


async def test_trailing_slash_never_echoes_the_host(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tasks/", headers={**headers(), "Host": "evil.example"})
    assert "location" not in response.headers
    assert_error(response, 404, "NotFound")


async def test_internal_error_has_no_stack_trace(app_factory: Callable[..., FastAPI]) -> None:
    # A queue whose Redis is not there: the client gets a clean 500, the operator gets the log.
    async with facade(app_factory(queue_url="redis://127.0.0.1:1/0")) as c:
        response = await c.post(CREATE, json=t2v(), headers=headers())
        body = assert_error(response, 500, "InternalError")
        assert "Traceback" not in json.dumps(body) and "Connection" not in body["message"]
        # The inputs of the failed submit were removed: nothing half-written.
        query = await c.get("/api/v1/tasks", headers=headers())
        assert query.status_code == 500


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"queue": True}


async def test_decompression_bomb_is_refused_at_the_facade(client: httpx.AsyncClient) -> None:

    response = await client.post(CREATE, json=i2v(data_uri(bomb_png())), headers=headers())
    assert_error(response, 400, "InvalidParameter", "50000x50000")
    listed = (await client.get("/api/v1/tasks", headers=headers())).json()
    assert listed["total"] == 0


async def test_model_without_a_live_worker_is_503_when_required(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(require_live_worker=True)
    async with facade(app) as c:
        response = await c.post(CREATE, json=t2v(), headers=headers())
        assert_error(response, 503, "ModelUnavailable", "happyhorse-1.0-t2v")
        await app.state.tasks.queue.announce("worker-1", ["happyhorse-1.0-t2v"], ttl_s=30)
        assert (await c.post(CREATE, json=t2v(), headers=headers())).status_code == 200
        # Other models stay unavailable: the worker announced only t2v.
        other = {"model": "happyhorse-1.0-r2v", "input": {"prompt": "x", "media": []}}
        assert_error(await c.post(CREATE, json=other, headers=headers()), 503, "ModelUnavailable")
