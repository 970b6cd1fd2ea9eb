"""Request ids, body limits, the hot poll route and the last-resort 500, on a real uvicorn where
the wire matters."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from server.api.http_protocol import http_protocol
from server.api.middleware import HotRouteMiddleware
from server.errors import InvalidApiKey
from tests.support.facade import facade, headers
from tests.support.uvicorn_server import exchange, serving

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


def _get(path: str, key: str = "sk-alice") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\r\n".encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_a_500_keeps_the_connection_usable(app_factory: Callable[..., FastAPI]) -> None:
    # Redis is not there: listing fails inside the route, and so does a poll, which is answered
    # ahead of the framework's routing (HotRouteMiddleware). The client gets the DashScope 500 for
    # each, and its next request on the same keep-alive connection is answered. (Two connections
    # at once: each failure first rides out the Redis client's retries, about 8 s.)
    app = app_factory(queue_url="redis://127.0.0.1:1/0")
    healthz = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    with serving(app, http=http_protocol()) as port, ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda path: exchange(port, _get(path), healthz), ["/api/v1/tasks", "/api/v1/tasks/t-1"])
        )
    for failed, after in answers:
        assert _status(failed) == 500 and b"connection: close" not in failed.lower()
        body = json.loads(failed.partition(b"\r\n\r\n")[2])
        assert body["code"] == "InternalError" and body["request_id"]
        assert _status(after) == 200


async def test_request_id_is_the_same_in_body_and_logs(client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/v1/tasks/nope", headers=headers())).json()["request_id"]
    second = (await client.get("/api/v1/tasks/nope", headers=headers())).json()["request_id"]
    assert first and second and first != second


async def test_declared_oversized_body_is_refused_unread(app_factory: Callable[..., FastAPI]) -> None:
    async with facade(app_factory(max_body_bytes=1000)) as client:
        body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x" * 2000}}
        response = await client.post(CREATE, json=body, headers=headers())
    assert response.status_code == 413
    error = response.json()
    assert error["code"] == "InvalidParameter" and "1000 bytes" in error["message"]


async def test_streamed_oversized_body_is_cut_off(app_factory: Callable[..., FastAPI]) -> None:
    sent = 0

    async def chunks() -> object:
        nonlocal sent
        for _ in range(100):
            sent += 500
            yield b"x" * 500

    async with facade(app_factory(max_body_bytes=1000)) as client:
        response = await client.post(CREATE, content=chunks(), headers=headers())
    assert response.status_code == 413 and response.json()["code"] == "InvalidParameter"
    assert sent < 100 * 500  # refused while streaming, not after the whole body


async def test_the_poll_path_refuses_other_methods(client: httpx.AsyncClient) -> None:
    refused = await client.delete("/api/v1/tasks/t-1", headers=headers())
    assert refused.status_code == 405 and refused.json()["code"] == "MethodNotAllowed"
    assert {"GET", "HEAD"} <= {m.strip() for m in refused.headers["allow"].split(",")}
    head = await client.head("/api/v1/tasks/t-1", headers=headers())
    assert head.status_code == 200 and head.content == b""


async def test_hot_routes_are_answered_ahead_of_the_app() -> None:
    async def framework(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("framework", status_code=418)(scope, receive, send)

    async def poll(request: Request) -> PlainTextResponse:
        if request.path_params["task_id"] == "locked":
            raise InvalidApiKey("No API-key provided.")
        return PlainTextResponse(f"hot {request.path_params['task_id']}")

    app = HotRouteMiddleware(framework, routes=[Route("/api/v1/tasks/{task_id}", poll, methods=["GET"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        hot = await client.get("/api/v1/tasks/t-1")
        assert (hot.status_code, hot.text) == (200, "hot t-1")
        assert (await client.post("/api/v1/tasks/t-1")).text == "framework"
        assert (await client.get("/api/v1/tasks/t-1/cancel")).text == "framework"
        locked = await client.get("/api/v1/tasks/locked")
    assert locked.status_code == 401
    assert locked.json()["code"] == "InvalidApiKey" and locked.json()["message"] == "No API-key provided."
