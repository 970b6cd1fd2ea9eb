"""Reliability and fairness rules of the TaskQueue contract (both backends): reclaim, poison
jobs, fencing across attempts, running caps, round robin, hand-back, quotas (429 via the facade),
and, on Redis, the 1,000-round cancel/claim race and riding out a Redis restart."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from server.api.app import create_app
from server.jobs import Claim, Limits, QuotaExceeded, RedisTaskQueue, TaskFilter, TaskQueue, make_task_queue
from server.jobs.job import TaskStatus
from server.keys import KeyRing, Tenant
from tests.chaos.redis_proc import RedisProcess
from tests.support.facade import facade, headers, make_settings
from tests.support.records import record

QueueMaker = Callable[..., TaskQueue]
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
T2V = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}, "parameters": {"duration": 3}}


@pytest.fixture
async def make_rq(queue_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[QueueMaker]:
    """Queues of the current backend with any settings (`claim_timeout_s`, `max_attempts`)."""
    url = "memory://"
    if queue_backend == "redis":
        url = request.getfixturevalue("redis_url")
        with redis.Redis.from_url(url) as flush:
            flush.flushdb()
    made: list[TaskQueue] = []

    def factory(**settings: Any) -> TaskQueue:
        made.append(make_task_queue(url, ttl_s=settings.pop("ttl_s", 86_400), **settings))
        return made[-1]

    yield factory
    for queue in made:
        await queue.close()


async def claim_now(queue: TaskQueue, consumer: str = "w1", timeout_s: float = 1.0) -> Claim:
    found = await queue.claim(consumer, timeout_s=timeout_s)
    assert found is not None
    return found


async def tenant_of_claims(queue: TaskQueue, n: int) -> list[str]:
    return [(await claim_now(queue)).record.tenant for _ in range(n)]


# -- reclaim, poison jobs, fencing ---------------------------------------------------------------
async def test_dead_claim_is_reclaimed_then_poisoned(make_rq: QueueMaker) -> None:
    queue = make_rq(claim_timeout_s=0.2, max_attempts=2)
    rec = record()
    await queue.submit(rec)
    first = await claim_now(queue, "w1")  # ... and w1 dies: no heartbeat, no ack
    assert await queue.claim("w2", timeout_s=0) is None  # not idle long enough yet
    started = time.monotonic()
    second = await claim_now(queue, "w2", timeout_s=2.0)
    assert 0.15 < time.monotonic() - started < 1.0
    assert (second.task_id, second.attempt, second.consumer) == (rec.task_id, 2, "w2")
    assert (await queue.get(rec.task_id)).status == TaskStatus.RUNNING  # type: ignore[union-attr]
    # The dead attempt's late writes are refused and change nothing.
    assert not await queue.complete(first, result_key="old", orig_prompt="p")
    assert not await queue.progress(first, 1, 2) and not await queue.heartbeat(first)
    await queue.release(first)
    assert await queue.get(rec.task_id) == second.record
    # w2 dies too: the second lost attempt makes it a poison job.
    assert await queue.claim("w3", timeout_s=0.6) is None
    failed = await queue.get(rec.task_id)
    assert failed is not None and failed.status == TaskStatus.FAILED
    assert failed.code == "InternalError" and "crashed its worker 2 times" in (failed.message or "")
    assert await queue.dead_letters() == [rec.task_id]
    assert await queue.failures(since=0) == {"InternalError": 1}  # the operators' view counts it
    now = time.time()
    failed_page, _ = await queue.list_tasks("t1", TaskFilter(now - 60, now + 60, TaskStatus.FAILED), 1, 10)
    assert [r.task_id for r in failed_page] == [rec.task_id]
    assert not await queue.complete(second, result_key="late", orig_prompt="p")
    assert not await queue.fail(second, code="InternalError", message="late")
    assert await queue.get(rec.task_id) == failed
    assert await queue.claim("w3", timeout_s=0.3) is None


async def test_heartbeats_keep_a_claim(make_rq: QueueMaker) -> None:
    queue = make_rq(claim_timeout_s=0.3)
    await queue.submit(record())
    claim = await claim_now(queue, "w1")
    for _ in range(6):  # 0.6 s: twice the claim timeout
        await asyncio.sleep(0.1)
        assert await queue.heartbeat(claim)
        assert await queue.claim("w2", timeout_s=0) is None
    assert await queue.complete(claim, result_key="k", orig_prompt="p")
    await asyncio.sleep(0.4)
    assert await queue.claim("w2", timeout_s=0) is None  # acked: nothing to reclaim


async def test_newer_attempt_and_final_record_win(make_rq: QueueMaker) -> None:
    queue = make_rq(claim_timeout_s=0.2, max_attempts=5)
    await queue.submit(record())
    first = await claim_now(queue, "w1")
    await asyncio.sleep(0.25)
    second = await claim_now(queue, "w2")
    assert second.attempt == first.attempt + 1
    assert await queue.complete(second, result_key="new", orig_prompt="p")
    done = await queue.get(second.task_id)
    for stale in (first, second, dataclasses.replace(second, attempt=second.attempt + 1)):
        assert not await queue.complete(stale, result_key="stale", orig_prompt="x")
        assert not await queue.fail(stale, code="InternalError", message="stale")
    assert await queue.get(second.task_id) == done and done is not None and done.result_key == "new"
    await asyncio.sleep(0.25)
    assert await queue.claim("w3", timeout_s=0) is None and await queue.dead_letters() == []


# -- fairness ------------------------------------------------------------------------------------
async def test_running_cap_keeps_jobs_pending(make_rq: QueueMaker) -> None:
    queue = make_rq()
    capped = [record(tenant="a") for _ in range(3)]
    for rec in capped:
        await queue.submit(rec, limits=Limits(running=1))
    await queue.submit(record(tenant="b"))
    first = await claim_now(queue)
    assert first.task_id == capped[0].task_id
    assert (await claim_now(queue)).record.tenant == "b"
    assert await queue.claim("w1", timeout_s=0.2) is None  # a is at its cap; b has nothing
    assert (await queue.get(capped[1].task_id)).status == TaskStatus.PENDING  # type: ignore[union-attr]
    assert await queue.depth() == 2
    assert await queue.complete(first, result_key="k", orig_prompt="p")
    assert (await claim_now(queue)).task_id == capped[1].task_id


async def test_round_robin_between_tenants(make_rq: QueueMaker) -> None:
    queue = make_rq()
    for tenant, n in (("a", 5), ("b", 2), ("c", 1)):
        for _ in range(n):
            await queue.submit(record(tenant=tenant))
    assert await tenant_of_claims(queue, 8) == ["a", "b", "c", "a", "b", "a", "a", "a"]


async def test_a_single_job_is_not_stuck_behind_a_backlog(make_rq: QueueMaker) -> None:
    """Fairness figure: key a holds 200 pending jobs; key b's one job goes to the next free slot."""
    queue = make_rq()
    for _ in range(200):
        await queue.submit(record(tenant="a"))
    assert await tenant_of_claims(queue, 3) == ["a", "a", "a"]
    single = record(tenant="b")
    await queue.submit(single)
    order = [(await claim_now(queue)).task_id for _ in range(3)]
    assert order.index(single.task_id) == 0, order  # the very next claim
    assert await queue.depth() == 200 - 3 - 2


async def test_release_is_taken_next(make_rq: QueueMaker) -> None:
    queue = make_rq()
    for tenant in ("a", "a", "b", "b"):
        await queue.submit(record(tenant=tenant))
    claim = await claim_now(queue)  # a; b is next in rotation ...
    await queue.release(claim)
    again = await claim_now(queue, "w2")  # ... but a handed-back job goes first
    assert (again.task_id, again.attempt) == (claim.task_id, 2)


async def test_cancel_frees_the_tenant_list(make_rq: QueueMaker) -> None:
    queue = make_rq()
    recs = [record(tenant="a") for _ in range(3)]
    for rec in recs:
        await queue.submit(rec)
    assert await queue.cancel(recs[0].task_id) is not None
    assert await queue.depth() == 2
    assert (await claim_now(queue)).task_id == recs[1].task_id


# -- quotas through the facade (429) -------------------------------------------------------------
async def test_quotas_answer_429(make_rq: QueueMaker, tmp_path: Path) -> None:
    keys = KeyRing(
        {
            "sk-rate": Tenant("rate", quota={"submit_per_s": 2}),
            "sk-pending": Tenant("pending", quota={"pending": 2}),
            "sk-free": Tenant("free"),
        }
    )
    app = create_app(make_settings(tmp_path, max_queue_depth=6), keys=keys, queue=make_rq())

    async with facade(app) as client:

        async def post(key: str) -> tuple[int, str]:
            response = await client.post(CREATE, json=T2V, headers=headers(key))
            return response.status_code, response.json().get("code", "")

        assert [await post("sk-rate") for _ in range(3)] == [
            (200, ""),
            (200, ""),
            (429, "Throttling.RateQuota"),
        ]
        await asyncio.sleep(0.55)  # 2 per second: one token back
        assert await post("sk-rate") == (200, "")
        assert [await post("sk-pending") for _ in range(3)][2] == (429, "Throttling.RateQuota")
        assert [await post("sk-free") for _ in range(2)] == [(200, ""), (429, "Throttling")]
        body = (await client.get("/api/v1/tasks", headers=headers("sk-pending"))).json()
        assert body["total"] == 2  # refused submits leave nothing behind


async def test_quota_exceeded_kinds(make_rq: QueueMaker) -> None:
    queue = make_rq()
    await queue.submit(record(), limits=Limits(queue_depth=1))
    with pytest.raises(QuotaExceeded) as err:
        await queue.submit(record(tenant="other"), limits=Limits(queue_depth=1))
    assert err.value.kind == "depth"
    assert Limits.from_quota({"submit_per_s": 5, "running": 2}, queue_depth=0) == Limits(5.0, 2, None, None)


# -- redis only ----------------------------------------------------------------------------------
@pytest.mark.redis
async def test_cancel_claim_race_1000_rounds(redis_url: str) -> None:
    """Cancel and claim race on separate connections: exactly one wins each of 1,000 rounds."""
    with redis.Redis.from_url(redis_url) as flush:
        flush.flushdb()
    facade_q = RedisTaskQueue.from_url(redis_url, ttl_s=3600)
    worker_q = RedisTaskQueue.from_url(redis_url, ttl_s=3600)
    wins = {"cancel": 0, "claim": 0}

    async def cancel_after(task_id: str, yields: int) -> Any:
        for _ in range(yields):  # jitter, so that each side wins some rounds
            await asyncio.sleep(0)
        return await facade_q.cancel(task_id)

    try:
        for i in range(1000):
            rec = record(tenant=f"t{i % 3}")
            await facade_q.submit(rec)
            canceled, claimed = await asyncio.gather(
                cancel_after(rec.task_id, i % 8), worker_q.claim("w1", timeout_s=0)
            )
            assert (canceled is None) != (claimed is None), f"round {i}"
            wins["cancel" if canceled else "claim"] += 1
            if claimed is not None:
                assert claimed.task_id == rec.task_id
                assert await worker_q.complete(claimed, result_key="k", orig_prompt="p")
            final = await facade_q.get(rec.task_id)
            assert final is not None
            assert final.status == (TaskStatus.CANCELED if canceled else TaskStatus.SUCCEEDED)
        assert await facade_q.depth() == 0 and await worker_q.claim("w1", timeout_s=0) is None
    finally:
        await facade_q.close()
        await worker_q.close()
    print(f"cancel/claim race: {wins}")
    assert min(wins.values()) > 0, wins


@pytest.mark.redis
async def test_redis_restart_is_ridden_out(tmp_path: Path) -> None:
    """A Redis restart (AOF) mid-use: commands retry through it and nothing queued is lost."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    queue = RedisTaskQueue.from_url(server.url, ttl_s=3600)
    try:
        kept = record()
        await queue.submit(kept)
        claim = await claim_now(queue)
        waiting = record()
        await queue.submit(waiting)
        server.kill()
        restart = asyncio.create_task(asyncio.to_thread(server.restart, 0.5))
        assert await queue.heartbeat(claim)  # retried until Redis is back
        await restart
        assert await queue.complete(claim, result_key="k", orig_prompt="p")
        assert (await claim_now(queue)).task_id == waiting.task_id
        assert (await queue.get(kept.task_id)).status == TaskStatus.SUCCEEDED  # type: ignore[union-attr]
    finally:
        await queue.close()
        server.stop()


@pytest.mark.redis
async def test_facade_answers_500_while_redis_is_down(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    queue = RedisTaskQueue.from_url(server.url, ttl_s=3600, retries=1)
    app = create_app(make_settings(tmp_path), queue=queue)
    try:
        async with facade(app) as client:
            assert (await client.post(CREATE, json=T2V, headers=headers())).status_code == 200
            server.kill()
            down = await client.post(CREATE, json=T2V, headers=headers())
            assert down.status_code == 500 and down.json()["code"] == "InternalError"
            assert "Traceback" not in down.text and "Connection" not in down.text
            server.start()
            assert (await client.post(CREATE, json=T2V, headers=headers())).status_code == 200
            listed = (await client.get("/api/v1/tasks", headers=headers())).json()
            assert listed["total"] == 2
    finally:
        server.stop()
