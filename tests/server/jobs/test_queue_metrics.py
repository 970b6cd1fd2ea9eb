"""Retries and dead letters are counted where the queue decides them, on both backends: a consumer
that dies (stops heartbeating) moves `paddock_job_retries_total` when its job is taken over, a
poison job moves `paddock_dead_letters_total`, and the PaddockDeadLetters alert fires on the
scraped values."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
import yaml

from server.jobs import TaskQueue, make_task_queue
from server.metrics import MetricsRecorder, PrometheusMetrics
from tests.support.promql import alert_fires, samples
from tests.support.records import record

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "rules.yaml"


def alert_expr(name: str) -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return next(r["expr"] for g in groups for r in g["rules"] if r.get("alert") == name)


@pytest.fixture
def queue_url(queue_backend: str, request: pytest.FixtureRequest) -> str:
    if queue_backend == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    with redis.Redis.from_url(url) as flush:
        flush.flushdb()
    return url


async def test_lost_consumers_count_as_retries_then_dead_letters(queue_url: str) -> None:
    prometheus = PrometheusMetrics()
    recorder = MetricsRecorder(prometheus)
    queue: TaskQueue = make_task_queue(
        queue_url, ttl_s=3600, claim_timeout_s=0.2, max_attempts=2, observer=recorder
    )
    try:
        await queue.submit(record())
        start = samples(prometheus.exposition().decode())
        first = await queue.claim("worker-a", timeout_s=1.0)  # ... and worker-a is SIGKILLed
        assert first is not None
        second = await queue.claim("worker-b", timeout_s=2.0)  # taken over after the claim timeout
        assert second is not None and second.attempt == 2
        retried = samples(prometheus.exposition().decode())
        assert retried[("paddock_job_retries_total", frozenset())] == 1
        assert retried[("paddock_dead_letters_total", frozenset())] == 0
        expr = alert_expr("PaddockDeadLetters")
        assert not alert_fires(expr, start, retried)
        await asyncio.sleep(0.25)  # worker-b dies too: its attempt is the last one allowed
        assert await queue.claim("worker-c", timeout_s=0.5) is None
        poisoned = samples(prometheus.exposition().decode())
        assert poisoned[("paddock_dead_letters_total", frozenset())] == 1
        assert poisoned[("paddock_job_retries_total", frozenset())] == 1
        assert alert_fires(expr, start, poisoned)
    finally:
        await queue.close()
