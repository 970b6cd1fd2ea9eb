"""The baseline of `paddock bench facade`: a bare ASGI app that answers `GET /api/v1/tasks/{id}`
with the one Redis read a task query needs (HGETALL of the task's hash) and nothing else: no
framework, no authentication, no middleware, no record parsing. Run under the same uvicorn as
the facade, it is the ceiling paddock's route is measured against.

    PADDOCK_BASELINE_REDIS_URL=redis://... uvicorn benchmarks.facade_baseline:app
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

TASK_KEY = "paddock:task:{task_id}"  # server/jobs/redis.py's layout under the default prefix

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_client: aioredis.Redis | None = None


async def _lifespan(receive: Receive, send: Send) -> None:
    global _client
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _client = aioredis.Redis.from_url(os.environ["PADDOCK_BASELINE_REDIS_URL"], decode_responses=True)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _client is not None:
                await _client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI callable."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert _client is not None, "lifespan startup did not run"
    task_id = scope["path"].rsplit("/", 1)[-1]
    fields = await _client.hgetall(TASK_KEY.format(task_id=task_id))
    body = json.dumps({"output": fields}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
