"""`Idempotency-Key` on the DashScope create: a retried create is the same task, a reused key for
another body is a 409, and parallel duplicates (memory and a real Redis) make exactly one task and
leave no stray inputs behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from server.api.app import create_app
from server.jobs import make_task_queue
from tests.support.facade import BOB, assert_error, facade, headers, make_settings
from tests.videos import data_uri, make_image

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
T2V: dict[str, Any] = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}, "parameters": {}}


def i2v(seed: int = 1) -> dict[str, Any]:
    image = data_uri(make_image(400, 300, seed=seed))
    return {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": image}]}}


@pytest.fixture
async def any_client(
    tmp_path: Path, queue_backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """A facade on the current queue backend (memory, or a flushed real Redis)."""
    queue = None
    if queue_backend == "redis":
        url = request.getfixturevalue("redis_url")
        with redis.Redis.from_url(url) as flush:
            flush.flushdb()
        queue = make_task_queue(url, ttl_s=86_400)
    async with facade(create_app(make_settings(tmp_path), queue=queue)) as client:
        yield client


def stored_inputs(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "data" / "objects" / "inputs"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def test_a_retried_create_is_the_same_task(client: httpx.AsyncClient) -> None:
    first = await client.post(CREATE, json=T2V, headers=headers(**{"Idempotency-Key": "order-1"}))
    again = await client.post(CREATE, json=T2V, headers=headers(**{"Idempotency-Key": "order-1"}))
    assert first.status_code == again.status_code == 200
    assert again.json()["output"] == first.json()["output"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["request_id"] != first.json()["request_id"]
    listed = (await client.get("/api/v1/tasks", headers=headers())).json()
    assert listed["total"] == 1


async def test_without_a_key_every_create_is_a_new_task(client: httpx.AsyncClient) -> None:
    ids = {(await client.post(CREATE, json=T2V, headers=headers())).json()["output"]["task_id"] for _ in "ab"}
    assert len(ids) == 2


async def test_a_key_reused_for_another_body_is_a_conflict(client: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "order-2"}
    first = (await client.post(CREATE, json=T2V, headers=headers(**key))).json()["output"]["task_id"]
    other = {**T2V, "input": {"prompt": "a zebra"}}
    refused = await client.post(CREATE, json=other, headers=headers(**key))
    body = assert_error(refused, 409, "Conflict.IdempotencyKey", "order-2")
    assert first in body["message"]
    assert refused.headers["x-should-retry"] == "false"


async def test_keys_are_per_tenant(client: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "shared"}
    mine = await client.post(CREATE, json=T2V, headers=headers(**key))
    theirs = await client.post(CREATE, json=T2V, headers=headers(BOB, **key))
    assert mine.json()["output"]["task_id"] != theirs.json()["output"]["task_id"]


@pytest.mark.parametrize("value", ["", "x" * 256, "tab\tinside"])
async def test_a_malformed_key_is_refused(client: httpx.AsyncClient, value: str) -> None:
    response = await client.post(CREATE, json=T2V, headers=headers(**{"Idempotency-Key": value}))
    assert_error(response, 400, "InvalidParameter", "Idempotency-Key")


async def test_parallel_duplicates_make_one_task_and_keep_one_set_of_inputs(
    any_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    key = {"Idempotency-Key": "burst-1"}
    answers = await asyncio.gather(
        *(any_client.post(CREATE, json=i2v(), headers=headers(**key)) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {200}
    task_ids = {a.json()["output"]["task_id"] for a in answers}
    assert len(task_ids) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 7
    (task_id,) = task_ids
    assert [p.parent.name for p in stored_inputs(tmp_path)] == [task_id]
    assert (await any_client.get("/api/v1/tasks", headers=headers())).json()["total"] == 1
    conflict = await any_client.post(CREATE, json=i2v(seed=2), headers=headers(**key))
    assert_error(conflict, 409, "Conflict.IdempotencyKey")
    assert [p.parent.name for p in stored_inputs(tmp_path)] == [task_id]
