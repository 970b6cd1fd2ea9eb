"""A live stack for the tests that run what an operator runs: Redis started with the chart's
StatefulSet arguments, and `paddock serve` on it with the CPU trial's models and the API key the
chart generates."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.deploy.helm import one, pods_of, render, values_of
from tests.deploy.redis_config import redis_server_with
from tests.live_server import LiveServer, paddock_process


@dataclass(frozen=True)
class LiveStack:
    server: LiveServer
    queue_url: str


@contextmanager
def chart_like_stack(tmp: Path) -> Iterator[LiveStack]:
    """Redis with the chart's StatefulSet args; `paddock serve` with its generated key and the
    CPU trial's models."""
    docs = render("default", ("queue.redis.enabled=true",))
    key = base64.b64decode(one(docs, "Secret")["data"]["PADDOCK_API_KEYS"]).decode()
    (redis_pod,) = pods_of(docs, "redis")
    models = tmp / "models.yaml"
    models.write_text(yaml.safe_dump(values_of("cpu-trial")["worker"]["modelsConfig"]))
    with redis_server_with(redis_pod.container("redis")["args"]) as queue_url:
        env = {"PADDOCK_QUEUE_URL": queue_url, "PADDOCK_MODELS": str(models), "OMP_NUM_THREADS": "1"}
        with paddock_process(tmp, keys=[key], env=env) as server:
            yield LiveStack(server, queue_url)
