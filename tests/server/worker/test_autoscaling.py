"""QueueLagPolicy without a Ray cluster: the decision function, polling, and Serve's delay wrapper."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest

from server.worker.autoscaling import QueueLagPolicy, QueueLoad, desired_replicas

# The wrapper tests import ray.serve (no cluster is started); keep it offline all the same.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

URL = "redis://127.0.0.1:1/0"


# -- the decision function (pure) ----------------------------------------------------------------


@pytest.mark.parametrize("floor", [0, 1])
def test_an_empty_queue_asks_for_the_minimum(floor: int) -> None:
    assert desired_replicas(0, jobs_per_replica=4, min_replicas=floor, max_replicas=5) == floor


def test_replicas_grow_with_the_load_and_stop_at_the_maximum() -> None:
    wanted = [desired_replicas(n, jobs_per_replica=4, min_replicas=0, max_replicas=3) for n in range(18)]
    assert wanted == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3]
    assert wanted == sorted(wanted)


def test_one_job_per_replica_and_nonsense_inputs() -> None:
    assert desired_replicas(7, jobs_per_replica=1, min_replicas=0, max_replicas=10) == 7
    assert desired_replicas(-3, jobs_per_replica=0, min_replicas=1, max_replicas=2) == 1


# -- the policy: polling and the reading ---------------------------------------------------------


class FakeContext:
    """The fields of Serve's AutoscalingContext that the policy reads."""

    def __init__(self, target: int = 1, lo: int = 0, hi: int = 4) -> None:
        self.target_num_replicas = target
        self.current_num_replicas = target
        self.capacity_adjusted_min_replicas = lo
        self.capacity_adjusted_max_replicas = hi


def reader(loads: list[QueueLoad | Exception], calls: list[str]) -> Callable[[str, str], Any]:
    async def read(url: str, prefix: str) -> QueueLoad:
        calls.append(url)
        value = loads[min(len(calls), len(loads)) - 1]
        if isinstance(value, Exception):
            raise value
        return value

    return read


async def settle(policy: QueueLagPolicy) -> None:
    task = policy._task
    if task is not None:
        await task


async def test_the_policy_counts_waiting_and_running_jobs() -> None:
    calls: list[str] = []
    read = reader([QueueLoad(3, 2)], calls)
    policy = QueueLagPolicy(URL, jobs_per_replica=2, poll_interval_s=0, read_load=read)
    # No reading yet: hold the current target rather than guess.
    assert policy(FakeContext(target=1)) == (1, {})
    await settle(policy)
    desired, state = policy(FakeContext(target=1))
    assert desired == 3  # ceil((3 waiting + 2 running) / 2)
    assert state == {"queue_waiting": 3, "queue_running": 2}
    await settle(policy)
    assert calls == [URL, URL]  # poll_interval_s=0: one read per tick


async def test_redis_is_read_at_most_once_per_interval() -> None:
    calls: list[str] = []
    policy = QueueLagPolicy(URL, poll_interval_s=60, read_load=reader([QueueLoad(1, 0)], calls))
    for _ in range(20):  # Serve's control loop ticks about every 0.1 s
        policy(FakeContext())
        await settle(policy)
    assert len(calls) == 1


async def test_a_failed_read_keeps_the_last_reading_until_it_is_stale() -> None:
    calls: list[str] = []
    read = reader([QueueLoad(0, 0), ConnectionError("down")], calls)
    now = [100.0]
    policy = QueueLagPolicy(URL, poll_interval_s=0, stale_after_s=20, read_load=read, clock=lambda: now[0])
    policy(FakeContext(target=2))
    await settle(policy)
    assert policy(FakeContext(target=2))[0] == 0  # scale to zero: the queue is empty
    await settle(policy)  # this read fails
    assert policy(FakeContext(target=2))[0] == 0
    now[0] += 19  # still fresh
    assert policy.load() == QueueLoad(0, 0)
    now[0] += 2  # the last good reading is 21 s old
    await settle(policy)
    assert policy(FakeContext(target=2)) == (2, {})  # stale: hold


def test_the_policy_needs_a_redis_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PADDOCK_QUEUE_URL", raising=False)
    with pytest.raises(ValueError, match="redis://"):
        QueueLagPolicy()
    monkeypatch.setenv("PADDOCK_QUEUE_URL", URL)
    assert QueueLagPolicy().queue_url == URL


# -- inside Serve's wrapper: the delays and bounds of the deployment's autoscaling_config ---------


def serve_context(config: Any, *, current: int, state: dict[str, Any]) -> Any:
    from ray.serve._private.common import DeploymentID
    from ray.serve.config import AutoscalingContext

    return AutoscalingContext(
        deployment_id=DeploymentID(name="VideoWorker", app_name="paddock"),
        deployment_name="VideoWorker",
        app_name="paddock",
        current_num_replicas=current,
        target_num_replicas=current,
        running_replicas=[],
        total_num_requests=0.0,  # pull model: Serve sees no requests
        total_queued_requests=0.0,
        aggregated_metrics={},
        raw_metrics={},
        capacity_adjusted_min_replicas=config.min_replicas,
        capacity_adjusted_max_replicas=config.max_replicas,
        policy_state=state,
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=None,
        config=config,
    )


class Loop:
    """Serve's control loop over one policy: each tick feeds the returned state back."""

    def __init__(self, load: QueueLoad, **config: Any) -> None:
        from ray.serve.autoscaling_policy import _apply_autoscaling_config
        from ray.serve.config import AutoscalingConfig

        self.config = AutoscalingConfig(**config)
        self.load = load
        self.policy = QueueLagPolicy(URL, jobs_per_replica=2, poll_interval_s=0, read_load=self._read)
        self.wrapped = _apply_autoscaling_config(self.policy)
        self.state: dict[str, Any] = {}

    async def _read(self, url: str, prefix: str) -> QueueLoad:
        return self.load

    async def tick(self, current: int) -> int:
        decision, self.state = self.wrapped(serve_context(self.config, current=current, state=self.state))
        await settle(self.policy)
        return decision


async def test_serve_applies_the_upscale_delay_but_not_from_zero() -> None:
    loop = Loop(QueueLoad(waiting=5, running=0), min_replicas=0, max_replicas=2, upscale_delay_s=0.3)
    await loop.tick(current=0)  # the first reading arrives
    assert await loop.tick(current=0) == 2  # from zero: at once, capped at max_replicas
    loop.load = QueueLoad(waiting=1, running=4)
    loop.config = loop.config.model_copy(update={"max_replicas": 5})
    assert await loop.tick(current=1) == 1  # wants 3, but the delay has not passed
    await asyncio.sleep(0.35)
    assert await loop.tick(current=1) == 3


async def test_serve_applies_the_downscale_and_to_zero_delays() -> None:
    loop = Loop(
        QueueLoad(waiting=0, running=0),
        min_replicas=0,
        max_replicas=4,
        downscale_delay_s=0.2,
        downscale_to_zero_delay_s=0.5,
    )
    await loop.tick(current=3)
    assert await loop.tick(current=3) == 3  # idle, but not for long enough
    await asyncio.sleep(0.25)
    assert await loop.tick(current=3) == 1  # Serve steps down to 1 first, never 3 -> 0
    assert await loop.tick(current=1) == 1
    await asyncio.sleep(0.3)
    assert await loop.tick(current=1) == 1  # the to-zero delay is longer
    await asyncio.sleep(0.25)
    assert await loop.tick(current=1) == 0
