"""The OpenAI-style Videos surface on an in-process facade (memory queue, no worker): the create
translation (JSON and multipart), one task across both surfaces, cursor pages, delete, the OpenAI
error body for every failure, and Idempotency-Key. The finished-video paths (content, remix) run
against a real worker in tests/e2e/test_openai_sdk.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.api.app import create_app
from tests.support.facade import ALICE, BOB, facade, make_settings
from tests.videos import data_uri, make_image

VIDEOS = "/v1/videos"
DASHSCOPE_CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


def auth(key: str = ALICE, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def assert_openai_error(
    response: httpx.Response, status: int, fragment: str, param: str | None = None
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert fragment in body["error"]["message"], body
    if param is not None:
        assert body["error"]["param"] == param, body
    expected_type = {401: "invalid_request_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error"
    )
    assert body["error"]["type"] == expected_type


@pytest.fixture
async def videos(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with facade(create_app(make_settings(tmp_path))) as client:
        yield client


async def create(client: httpx.AsyncClient, key: str = ALICE, **body: Any) -> dict[str, Any]:
    response = await client.post(VIDEOS, json={"prompt": "a horse", **body}, headers=auth(key))
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


async def test_create_translates_size_seconds_and_model(videos: httpx.AsyncClient) -> None:
    video = await create(videos, size="1280x720", seconds="8")
    assert video["object"] == "video" and video["status"] == "queued" and video["progress"] == 0
    assert (video["model"], video["size"], video["seconds"]) == ("happyhorse-1.0-t2v", "1280x720", "8")
    assert video["completed_at"] is None and video["error"] is None and video["prompt"] == "a horse"
    assert video["expires_at"] - video["created_at"] == 86_400
    default = await create(videos)  # OpenAI's defaults: sora-2, 720x1280, 4 s
    assert (default["model"], default["size"], default["seconds"]) == ("happyhorse-1.0-t2v", "720x1280", "4")
    pro = await create(videos, model="sora-2-pro", size="1792x1024", seconds=12)
    # 1.8 MP is nearer 1080P's pixels; 7:4 is nearest 16:9.
    assert (pro["model"], pro["size"], pro["seconds"]) == ("happyhorse-1.1-t2v", "1920x1080", "12")
    by_name = await create(videos, model="happyhorse-1.0-r2v", input_reference={"image_url": _image()})
    assert by_name["model"] == "happyhorse-1.0-r2v"


def _image(width: int = 800, height: int = 600) -> str:
    return data_uri(make_image(width, height))


async def test_image_to_video_from_a_form_file_or_an_image_url(videos: httpx.AsyncClient) -> None:
    form = await videos.post(
        VIDEOS,
        data={"prompt": "it gallops", "model": "sora-2", "seconds": "4"},
        files={"input_reference": ("horse.jpg", make_image(800, 600, fmt="JPEG"), "image/jpeg")},
        headers=auth(),
    )
    assert form.status_code == 200, form.text
    # The image's 4:3 aspect at 720P, as on the DashScope surface.
    assert (form.json()["model"], form.json()["size"]) == ("happyhorse-1.0-i2v", "1104x832")
    by_url = await create(videos, input_reference={"image_url": _image(600, 800)})
    assert (by_url["model"], by_url["size"]) == ("happyhorse-1.0-i2v", "832x1104")


async def test_one_task_whichever_surface_made_or_reads_it(videos: httpx.AsyncClient) -> None:
    video = await create(videos, prompt="made on /v1")
    dashscope = (await videos.get(f"/api/v1/tasks/{video['id']}", headers=auth())).json()
    assert dashscope["output"]["task_status"] == "PENDING"
    body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "made on DashScope"}}
    made = await videos.post(DASHSCOPE_CREATE, json=body, headers=auth(**{"X-DashScope-Async": "enable"}))
    task_id = made.json()["output"]["task_id"]
    seen = (await videos.get(f"{VIDEOS}/{task_id}", headers=auth())).json()
    assert (seen["id"], seen["status"], seen["prompt"]) == (task_id, "queued", "made on DashScope")
    await videos.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())
    canceled = (await videos.get(f"{VIDEOS}/{task_id}", headers=auth())).json()
    assert canceled["status"] == "failed" and canceled["error"]["code"] == "canceled"
    assert canceled["completed_at"] is not None


async def test_cursor_pages_in_both_orders(videos: httpx.AsyncClient) -> None:
    ids = [(await create(videos, prompt=f"video {i}"))["id"] for i in range(5)]
    await create(videos, key=BOB)  # another tenant's: never listed

    async def walk(order: str) -> list[list[str]]:
        pages, after = [], None
        while True:
            query = {"limit": "2", "order": order, **({"after": after} if after else {})}
            page = (await videos.get(VIDEOS, params=query, headers=auth())).json()
            pages.append([v["id"] for v in page["data"]])
            assert page["object"] == "list" and page["last_id"] == (pages[-1][-1] if pages[-1] else None)
            if not page["has_more"]:
                return pages
            after = page["last_id"]

    assert await walk("desc") == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert await walk("asc") == [ids[:2], ids[2:4], ids[4:]]
    everything = (await videos.get(VIDEOS, headers=auth())).json()
    assert [v["id"] for v in everything["data"]] == ids[::-1] and not everything["has_more"]


async def test_delete_cancels_a_queued_video_and_forgets_it(videos: httpx.AsyncClient) -> None:
    video = await create(videos)
    assert_openai_error(await videos.delete(f"{VIDEOS}/{video['id']}", headers=auth(BOB)), 404, "not found")
    deleted = await videos.delete(f"{VIDEOS}/{video['id']}", headers=auth())
    assert deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert_openai_error(
        await videos.get(f"{VIDEOS}/{video['id']}", headers=auth()), 404, "not found", "video_id"
    )
    assert (await videos.get(f"/api/v1/tasks/{video['id']}", headers=auth())).json()["output"][
        "task_status"
    ] == "UNKNOWN"
    assert_openai_error(await videos.delete(f"{VIDEOS}/{video['id']}", headers=auth()), 404, "not found")


async def test_idempotency_key_on_the_openai_surface(videos: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "v1-order-7"}
    first = await videos.post(VIDEOS, json={"prompt": "a horse"}, headers=auth(**key))
    again = await videos.post(VIDEOS, json={"prompt": "a horse"}, headers=auth(**key))
    assert first.json()["id"] == again.json()["id"] and again.headers["idempotent-replayed"] == "true"
    refused = await videos.post(VIDEOS, json={"prompt": "a zebra"}, headers=auth(**key))
    assert_openai_error(refused, 409, "already used", "Idempotency-Key")
    assert refused.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("body", "fragment", "param"),
    [
        ({}, "prompt is required", "prompt"),
        ({"prompt": " "}, "prompt is required", "prompt"),
        ({"prompt": "x", "size": "big"}, "WIDTHxHEIGHT", "size"),
        ({"prompt": "x", "size": "0x720"}, "WIDTHxHEIGHT", "size"),
        ({"prompt": "x", "seconds": "2"}, "from 3 to 15", "seconds"),
        ({"prompt": "x", "seconds": "4.5"}, "from 3 to 15", "seconds"),
        ({"prompt": "x", "seconds": True}, "from 3 to 15", "seconds"),
        ({"prompt": "x", "seconds": "¹"}, "from 3 to 15", "seconds"),
        ({"prompt": "x", "size": "¹x720"}, "WIDTHxHEIGHT", "size"),
        ({"prompt": "x", "model": "sora-9"}, "Supported values are", "model"),
        ({"prompt": "x", "model": "happyhorse-1.0-video-edit"}, "Supported values are", "model"),
        ({"prompt": "x", "model": 3}, "model must be a string", "model"),
        ({"prompt": "x", "model": "happyhorse-1.0-i2v"}, "needs an input_reference", "input_reference"),
        (
            {
                "prompt": "x",
                "model": "happyhorse-1.0-t2v",
                "input_reference": {"image_url": "https://e.com/a.png"},
            },
            "takes no input_reference",
            "input_reference",
        ),
        ({"prompt": "x", "input_reference": {"file_id": "file-1"}}, "file ids", "input_reference.file_id"),
        ({"prompt": "x", "input_reference": "https://e.com/a.png"}, "image_url", "input_reference"),
        ({"prompt": "x", "input_reference": {"image_url": "ftp://e.com/a"}}, "scheme 'ftp'", None),
        ({"prompt": "x", "seed": -1}, "parameters.seed", None),
    ],
)
async def test_bad_input_is_an_openai_error(
    videos: httpx.AsyncClient, body: dict[str, Any], fragment: str, param: str | None
) -> None:
    assert_openai_error(await videos.post(VIDEOS, json=body, headers=auth()), 400, fragment, param)


async def test_framework_failures_are_openai_errors_too(videos: httpx.AsyncClient) -> None:
    assert_openai_error(await videos.get(VIDEOS), 401, "No API-key")
    assert_openai_error(await videos.get(VIDEOS, headers=auth("sk-wrong")), 401, "Invalid API-key")
    assert_openai_error(await videos.get("/v1/nothing", headers=auth()), 404, "Invalid URL (GET /v1/nothing)")
    patched = await videos.patch(VIDEOS, headers=auth())
    assert_openai_error(patched, 405, "Invalid URL")
    assert "GET" in patched.headers["allow"]
    assert_openai_error(await videos.post(VIDEOS, content=b"{nope", headers=auth()), 400, "not valid JSON")
    huge = b"x" * (33 * 1024 * 1024)
    assert_openai_error(await videos.post(VIDEOS, content=huge, headers=auth()), 413, "larger than")
    for query, param in (({"limit": "0"}, "limit"), ({"order": "up"}, "order"), ({"after": "nope"}, "after")):
        assert_openai_error(await videos.get(VIDEOS, params=query, headers=auth()), 400, param, param)
    # The DashScope surface keeps its own shape.
    dashscope = (await videos.get("/api/v1/tasks/x")).json()
    assert set(dashscope) == {"request_id", "code", "message"}


async def test_content_and_remix_need_a_completed_video(videos: httpx.AsyncClient) -> None:
    video = await create(videos)
    content = await videos.get(f"{VIDEOS}/{video['id']}/content", headers=auth())
    assert_openai_error(content, 400, "not completed (status: queued)")
    bad_variant = await videos.get(f"{VIDEOS}/{video['id']}/content?variant=gif", headers=auth())
    assert_openai_error(bad_variant, 400, "variant must be one of", "variant")
    remix = await videos.post(f"{VIDEOS}/{video['id']}/remix", json={"prompt": "at night"}, headers=auth())
    assert_openai_error(remix, 400, "Only a completed video can be remixed")
    assert_openai_error(
        await videos.post(f"{VIDEOS}/{video['id']}/remix", json={}, headers=auth()), 400, "prompt", "prompt"
    )
    missing = await videos.post(f"{VIDEOS}/nope/remix", json={"prompt": "x"}, headers=auth())
    assert_openai_error(missing, 404, "not found")


async def test_the_alias_table_is_a_setting(tmp_path: Path) -> None:
    aliases = {"house-model": "happyhorse-1.1-t2v", "sora-2": {"t2v": "happyhorse-1.0-t2v"}}
    app = create_app(make_settings(tmp_path, openai_models=aliases, openai_default_model="house-model"))
    async with facade(app) as client:
        assert (await create(client))["model"] == "happyhorse-1.1-t2v"
        no_i2v = await client.post(
            VIDEOS,
            json={"prompt": "x", "model": "sora-2", "input_reference": {"image_url": _image()}},
            headers=auth(),
        )
        assert_openai_error(no_i2v, 400, "has no i2v model", "model")


async def test_the_surface_is_in_the_openapi_description(videos: httpx.AsyncClient) -> None:
    schema = (await videos.get("/openapi.json")).json()
    ops = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert {
        ("post", "/v1/videos"),
        ("get", "/v1/videos"),
        ("get", "/v1/videos/{video_id}"),
        ("delete", "/v1/videos/{video_id}"),
        ("post", "/v1/videos/{video_id}/remix"),
        ("get", "/v1/videos/{video_id}/content"),
    } <= ops
    create = schema["paths"]["/v1/videos"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert create["security"] == [{"DashScopeApiKey": []}]
    assert create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("OpenAIError")
    assert {p["name"] for p in create["parameters"]} == {"Idempotency-Key"}
