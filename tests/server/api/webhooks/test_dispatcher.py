"""Webhook delivery from an in-process facade (memory queue) to a real local receiver: signed per
Standard Webhooks (checked with the `standardwebhooks` package), retried with backoff until it
gets through, dead after the last attempt, and never sent to an address the guard refuses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from standardwebhooks.webhooks import WebhookVerificationError

from server.api.app import create_app
from server.api.webhooks import signature_headers
from server.jobs import Delivery
from tests.support.facade import assert_error, facade, headers, make_settings
from tests.support.webhook_receiver import event_of, new_secret, receiving
from tests.support.worker_app import Scrape, scrape

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
T2V: dict[str, Any] = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}, "parameters": {}}
SECRET = new_secret()


def key_file(tmp_path: Path, webhook_url: str | None, *, secret: str | None = SECRET) -> str:
    alice: dict[str, Any] = {"key": "sk-alice", "tenant": "alice"}
    if secret is not None:
        alice["webhook_secret"] = secret
    if webhook_url is not None:
        alice["webhook_url"] = webhook_url
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"keys": [alice, {"key": "sk-bob", "tenant": "bob"}]}))
    return str(path)


@asynccontextmanager
async def hooked_facade(
    tmp_path: Path, webhook_url: str | None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """A facade whose key `sk-alice` has a webhook to `webhook_url`; `sk-bob` has none."""
    settings = {
        "api_keys": key_file(tmp_path, webhook_url),
        "webhook_backoff_s": 0.05,
        "webhook_poll_interval_s": 0.02,
        "webhook_allow_hosts": "127.0.0.1",
        **overrides,
    }
    app = create_app(make_settings(tmp_path, **settings))
    async with facade(app) as client:
        yield client, app


async def cancel_new_task(
    client: httpx.AsyncClient, body: dict[str, Any] = T2V, key: str = "sk-alice"
) -> str:
    """A task that reaches a final state (CANCELED) without a worker."""
    created = await client.post(CREATE, json=body, headers=headers(key))
    assert created.status_code == 200, created.text
    task_id = str(created.json()["output"]["task_id"])
    assert (await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=headers(key))).status_code == 200
    return task_id


async def settle(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_a_receiver_that_fails_twice_gets_it_on_the_third_attempt(tmp_path: Path) -> None:
    with receiving([500, 503]) as receiver:
        async with hooked_facade(tmp_path, receiver.url) as (client, _app):
            task_id = await cancel_new_task(client)
            await settle(lambda: len(receiver.received) == 3)
            metrics = await scrape(client)
    first, third = receiver.received[0], receiver.received[2]
    assert [r.status for r in receiver.received] == [500, 503, 204]
    assert {r.headers["webhook-id"] for r in receiver.received} == {f"msg_{task_id}"}
    for attempt in receiver.received:
        event = event_of(attempt, SECRET)
        assert event["type"] == "task.canceled"
        assert event["data"]["output"]["task_id"] == task_id
        assert event["data"]["output"]["task_status"] == "CANCELED"
        assert attempt.headers["content-type"] == "application/json"
    assert int(third.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    assert metrics.get("paddock_webhook_deliveries_total", outcome="retry") == 2
    assert metrics.get("paddock_webhook_deliveries_total", outcome="delivered") == 1
    assert metrics.get("paddock_webhook_delivery_duration_seconds_count") == 3


async def test_a_forged_signature_does_not_verify() -> None:
    body = b'{"type":"task.succeeded"}'
    with receiving() as receiver:
        forged = signature_headers(new_secret(), "msg_x", int(time.time()), body)
        httpx.post(receiver.url, content=body, headers=forged)
        (got,) = receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError, match=r"(?i)signature"):
        got.verified(SECRET)


async def test_gives_up_after_the_last_attempt(tmp_path: Path) -> None:
    with receiving([500] * 10) as receiver:
        async with hooked_facade(tmp_path, receiver.url, webhook_max_attempts=3) as (client, app):
            await cancel_new_task(client)
            await settle(lambda: len(receiver.received) == 3)
            await asyncio.sleep(0.3)  # no fourth attempt comes
            dead = await app.state.tasks.queue.webhooks.dead()
            metrics = await scrape(client)
    assert len(receiver.received) == 3
    assert dead[0].attempts == 3 and "HTTP 500" in dead[0].reason
    assert metrics.get("paddock_webhook_deliveries_total", outcome="dead") == 1


async def test_a_private_address_is_refused_unless_allowed(tmp_path: Path) -> None:
    with receiving() as receiver:
        async with hooked_facade(tmp_path, receiver.url, webhook_allow_hosts="") as (client, app):
            await cancel_new_task(client)
            await settle(lambda: _metric(app, "refused") > 0)
            metrics = await scrape(client)
        assert receiver.received == []
    assert metrics.get("paddock_webhook_deliveries_total", outcome="refused") == 1
    assert metrics.get("paddock_webhook_deliveries_total", outcome="delivered") == 0


def _metric(app: FastAPI, outcome: str) -> float:
    exposition = app.state.metrics.backend.exposition().decode()
    return Scrape(exposition).get("paddock_webhook_deliveries_total", outcome=outcome)


async def test_a_task_webhook_url_overrides_the_keys(tmp_path: Path) -> None:
    with receiving() as keys_receiver, receiving() as tasks_receiver:
        async with hooked_facade(tmp_path, keys_receiver.url) as (client, _app):
            body = {**T2V, "parameters": {"webhook_url": tasks_receiver.url}}
            task_id = await cancel_new_task(client, body)
            (got,) = await asyncio.to_thread(tasks_receiver.wait_for, 1)
    assert keys_receiver.received == []
    assert event_of(got, SECRET)["data"]["output"]["task_id"] == task_id


@pytest.mark.parametrize(
    ("key", "url", "status", "code", "fragment"),
    [
        ("sk-bob", "https://hooks.example.com/x", 400, "InvalidParameter", "no webhook_secret"),
        ("sk-alice", "ftp://hooks.example.com/x", 400, "InvalidURL", "scheme 'ftp'"),
        ("sk-alice", "http://10.1.2.3/x", 400, "InvalidURL", "not a public address"),
        ("sk-alice", "http://[::1]:9/x", 400, "InvalidURL", "not a public address"),
        ("sk-alice", 42, 400, "InvalidParameter", "must be an http(s) URL"),
    ],
)
async def test_a_bad_task_webhook_url_is_refused_at_create(
    tmp_path: Path, key: str, url: Any, status: int, code: str, fragment: str
) -> None:
    async with hooked_facade(tmp_path, None, webhook_allow_hosts="") as (client, _app):
        body = {**T2V, "parameters": {"webhook_url": url}}
        assert_error(await client.post(CREATE, json=body, headers=headers(key)), status, code, fragment)


async def test_a_task_without_a_webhook_sends_nothing(tmp_path: Path) -> None:
    with receiving() as receiver:
        async with hooked_facade(tmp_path, receiver.url) as (client, _app):
            await cancel_new_task(client, key="sk-bob")
            await asyncio.sleep(0.2)
    assert receiver.received == []


async def test_a_vanished_task_or_a_missing_secret_ends_the_delivery(tmp_path: Path) -> None:
    with receiving() as receiver:
        async with hooked_facade(tmp_path, receiver.url) as (client, app):
            dispatcher, outbox = app.state.webhooks, app.state.tasks.queue.webhooks
            gone = Delivery("no-such-task", "alice", receiver.url, "SUCCEEDED")
            outbox.add(gone)
            assert await dispatcher.attempt(gone) == "gone"
            task_id = await cancel_new_task(client)
            unsigned = Delivery(task_id, "bob", receiver.url, "CANCELED")  # bob's keys have no secret
            outbox.add(unsigned)
            assert await dispatcher.attempt(unsigned) == "dead"
            assert (await outbox.dead())[0].reason == "the tenant's keys have no webhook_secret"
    assert all(r.headers["webhook-id"] != "msg_no-such-task" for r in receiver.received)
