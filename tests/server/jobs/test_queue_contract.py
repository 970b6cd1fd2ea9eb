"""The TaskQueue contract (server/jobs/base.py), run against memory:// and a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import redis

from server.jobs import (
    Claim,
    DuplicateTask,
    MemoryTaskQueue,
    RedisTaskQueue,
    TaskFilter,
    TaskQueue,
    make_task_queue,
)
from server.jobs.job import TRANSITIONS, InvalidTransition, TaskRecord, TaskStatus, check_transition
from tests.redis_server import QueueFactory
from tests.support.records import record


async def claim_now(queue: TaskQueue, consumer: str = "w1") -> Claim:
    found = await queue.claim(consumer, timeout_s=1.0)
    assert found is not None
    return found


def window(**kw: object) -> TaskFilter:
    now = time.time()
    return TaskFilter(start_time=now - 3600, end_time=now + 3600, **kw)  # type: ignore[arg-type]


# -- records ------------------------------------------------------------------------------------
async def test_submit_get_round_trip(queue: TaskQueue) -> None:
    rec = record(workspace="ws-1")
    await queue.submit(rec)
    assert await queue.get(rec.task_id) == rec
    assert await queue.get("no-such-task") is None
    assert await queue.ping()


async def test_duplicate_refused(queue: TaskQueue) -> None:
    rec = record()
    await queue.submit(rec)
    with pytest.raises(DuplicateTask):
        await queue.submit(dataclasses.replace(rec, model="other"))
    assert (await queue.get(rec.task_id)) == rec
    assert await queue.depth() == 1


# -- claim --------------------------------------------------------------------------------------
async def test_claim_marks_running(queue: TaskQueue) -> None:
    rec = record()
    await queue.submit(rec)
    before = time.time()
    claim = await claim_now(queue, "worker-a")
    assert (claim.task_id, claim.attempt, claim.consumer) == (rec.task_id, 1, "worker-a")
    assert claim.record.status == TaskStatus.RUNNING
    assert claim.record.scheduled_time is not None and claim.record.scheduled_time >= before
    assert await queue.get(rec.task_id) == claim.record
    assert await queue.depth() == 0


async def test_claim_fifo(queue: TaskQueue) -> None:
    first, second = record(), record()
    await queue.submit(first)
    await queue.submit(second)
    assert (await claim_now(queue)).task_id == first.task_id
    assert (await claim_now(queue)).task_id == second.task_id


async def test_claim_timeout_returns_none(queue: TaskQueue) -> None:
    started = time.monotonic()
    assert await queue.claim("w1", timeout_s=0.3) is None
    assert 0.25 <= time.monotonic() - started < 1.5
    started = time.monotonic()
    assert await queue.claim("w1", timeout_s=0) is None
    assert time.monotonic() - started < 0.5


async def test_claim_wakes_on_submit(queue: TaskQueue) -> None:
    rec = record()

    async def submit_later() -> None:
        await asyncio.sleep(0.1)
        await queue.submit(rec)

    started = time.monotonic()
    claim, _ = await asyncio.gather(queue.claim("w1", timeout_s=5.0), submit_later())
    assert claim is not None and claim.task_id == rec.task_id
    assert time.monotonic() - started < 1.5


# -- cancel -------------------------------------------------------------------------------------
async def test_cancel_pending(queue: TaskQueue) -> None:
    rec = record()
    await queue.submit(rec)
    canceled = await queue.cancel(rec.task_id)
    assert canceled is not None and canceled.status == TaskStatus.CANCELED
    assert canceled.end_time is not None
    assert await queue.get(rec.task_id) == canceled
    assert await queue.depth() == 0
    assert await queue.claim("w1", timeout_s=0.1) is None
    assert await queue.cancel(rec.task_id) is None
    assert await queue.cancel("no-such-task") is None


async def test_cancel_running_refused(queue: TaskQueue) -> None:
    await queue.submit(record())
    claim = await claim_now(queue)
    assert await queue.cancel(claim.task_id) is None
    assert (await queue.get(claim.task_id)).status == TaskStatus.RUNNING  # type: ignore[union-attr]


async def test_cancel_claim_race(queue_backend: str, make_queue: QueueFactory) -> None:
    facade = make_queue()
    worker = facade if queue_backend == "memory" else make_queue()  # redis: separate connections
    wins = {"cancel": 0, "claim": 0}

    async def cancel_after(task_id: str, delay_s: float) -> TaskRecord | None:
        if delay_s:  # jitter so that each side wins some rounds
            await asyncio.sleep(delay_s)
        return await facade.cancel(task_id)

    for i in range(50):
        rec = record()
        await facade.submit(rec)
        canceled, claimed = await asyncio.gather(
            cancel_after(rec.task_id, (i % 5) * 0.0004), worker.claim("w1", timeout_s=0)
        )
        assert (canceled is None) != (claimed is None), f"round {i}: {canceled} / {claimed}"
        wins["cancel" if canceled else "claim"] += 1
        final = await facade.get(rec.task_id)
        assert final is not None
        assert final.status == (TaskStatus.CANCELED if canceled else TaskStatus.RUNNING)
        if claimed is not None:
            assert await worker.complete(claimed, result_key="k", orig_prompt="p")
    assert await facade.depth() == 0
    assert await worker.claim("w1", timeout_s=0) is None
    assert min(wins.values()) > 0, wins


# -- fenced worker writes -----------------------------------------------------------------------
async def test_stale_attempt_is_fenced(queue: TaskQueue) -> None:
    await queue.submit(record())
    claim = await claim_now(queue)
    stale = dataclasses.replace(claim, attempt=claim.attempt - 1)
    before = await queue.get(claim.task_id)
    assert not await queue.complete(stale, result_key="k", orig_prompt="p")
    assert not await queue.fail(stale, code="InternalError", message="boom")
    assert not await queue.progress(stale, 1, 10)
    assert not await queue.heartbeat(stale)
    await queue.release(stale)
    assert await queue.get(claim.task_id) == before
    assert await queue.heartbeat(claim)


async def test_progress_stored(queue: TaskQueue) -> None:
    await queue.submit(record())
    claim = await claim_now(queue)
    assert await queue.progress(claim, 3, 10)
    got = await queue.get(claim.task_id)
    assert got is not None and (got.progress_step, got.progress_total) == (3, 10)


async def test_complete_then_final_never_overwritten(queue: TaskQueue) -> None:
    await queue.submit(record())
    claim = await claim_now(queue)
    assert await queue.complete(claim, result_key="out/x.mp4", orig_prompt="a horse")
    done = await queue.get(claim.task_id)
    assert done is not None and done.status == TaskStatus.SUCCEEDED
    assert (done.result_key, done.orig_prompt) == ("out/x.mp4", "a horse")
    assert done.end_time is not None and done.end_time >= done.scheduled_time  # type: ignore[operator]
    assert not await queue.fail(claim, code="InternalError", message="late")
    assert not await queue.complete(claim, result_key="other", orig_prompt="")
    assert not await queue.progress(claim, 9, 10)
    assert not await queue.heartbeat(claim)
    await queue.release(claim)
    assert await queue.get(claim.task_id) == done
    assert await queue.claim("w2", timeout_s=0.1) is None


async def test_fail_is_final(queue: TaskQueue) -> None:
    await queue.submit(record())
    claim = await claim_now(queue)
    assert await queue.fail(claim, code="InternalError.Timeout", message="too slow")
    failed = await queue.get(claim.task_id)
    assert failed is not None and failed.status == TaskStatus.FAILED
    assert (failed.code, failed.message) == ("InternalError.Timeout", "too slow")
    assert not await queue.complete(claim, result_key="k", orig_prompt="p")
    assert await queue.get(claim.task_id) == failed


async def test_release_requeues_with_next_attempt(queue: TaskQueue) -> None:
    await queue.submit(record())
    first = await claim_now(queue, "w1")
    assert await queue.progress(first, 2, 10)
    await queue.release(first)
    pending = await queue.get(first.task_id)
    assert pending is not None and pending.status == TaskStatus.PENDING
    assert (pending.scheduled_time, pending.progress_step) == (None, None)
    assert await queue.depth() == 1
    second = await claim_now(queue, "w2")
    assert (second.task_id, second.attempt) == (first.task_id, 2)
    assert not await queue.complete(first, result_key="k", orig_prompt="p")
    assert await queue.complete(second, result_key="k", orig_prompt="p")
    assert await queue.claim("w1", timeout_s=0.1) is None


# -- TTL ----------------------------------------------------------------------------------------
async def test_ttl_expiry(make_queue: QueueFactory) -> None:
    queue = make_queue(ttl_s=1)
    kept, running = record(), record()
    await queue.submit(kept)
    await queue.submit(running)
    claim = await queue.claim("w1", timeout_s=1.0)
    assert claim is not None
    assert await queue.get(kept.task_id) is not None
    await asyncio.sleep(0.6)
    assert await queue.progress(claim, 1, 2)  # an update must not extend the TTL
    await asyncio.sleep(0.9)
    assert await queue.get(kept.task_id) is None
    assert await queue.get(running.task_id) is None
    assert await queue.list_tasks("t1", window(), 1, 10) == ([], 0)
    assert await queue.cancel(kept.task_id) is None


# -- list ---------------------------------------------------------------------------------------
async def test_list_filters_and_paging(queue: TaskQueue) -> None:
    base = time.time() - 100
    recs = [
        record(submit_time=base + i, model="m-a" if i % 2 else "m-b", workspace="ws" if i < 3 else None)
        for i in range(5)
    ]
    for rec in recs:
        await queue.submit(rec)
    await queue.submit(record(tenant="t2", submit_time=base + 10))
    claim = await claim_now(queue)  # recs[0] → RUNNING
    newest_first = [r.task_id for r in reversed(recs)]

    page, total = await queue.list_tasks("t1", window(), 1, 10)
    assert ([r.task_id for r in page], total) == (newest_first, 5)
    assert (await queue.list_tasks("t2", window(), 1, 10))[1] == 1
    assert await queue.list_tasks("nobody", window(), 1, 10) == ([], 0)

    pages = [await queue.list_tasks("t1", window(), n, 2) for n in (1, 2, 3, 4)]
    assert [[r.task_id for r in p] for p, _ in pages] == [
        newest_first[:2],
        newest_first[2:4],
        newest_first[4:],
        [],
    ]
    assert {t for _, t in pages} == {5}

    ids = lambda result: [r.task_id for r in result[0]]  # noqa: E731
    assert ids(await queue.list_tasks("t1", window(status=TaskStatus.RUNNING), 1, 10)) == [claim.task_id]
    assert ids(await queue.list_tasks("t1", window(model="m-a"), 1, 10)) == [recs[3].task_id, recs[1].task_id]
    assert ids(await queue.list_tasks("t1", window(workspace="ws"), 1, 10)) == newest_first[2:]
    assert ids(await queue.list_tasks("t1", window(task_id=recs[2].task_id), 1, 10)) == [recs[2].task_id]
    other = (await queue.list_tasks("t2", window(), 1, 1))[0][0].task_id
    assert await queue.list_tasks("t1", window(task_id=other), 1, 10) == ([], 0)
    inclusive = TaskFilter(start_time=base + 1, end_time=base + 3)
    assert ids(await queue.list_tasks("t1", inclusive, 1, 10)) == newest_first[1:4]


async def test_status_filter_follows_every_transition(queue: TaskQueue) -> None:
    recs = [record() for _ in range(5)]
    for rec in recs:
        await queue.submit(rec)
    claims = [await claim_now(queue) for _ in range(3)]
    assert await queue.complete(claims[0], result_key="k", orig_prompt="p")
    assert await queue.fail(claims[1], code="InternalError.Algo", message="boom")
    await queue.release(claims[2])
    assert await queue.cancel(recs[3].task_id) is not None

    async def with_status(status: TaskStatus) -> set[str]:
        page, total = await queue.list_tasks("t1", window(status=status), 1, 10)
        assert total == len(page)
        return {r.task_id for r in page}

    assert await with_status(TaskStatus.SUCCEEDED) == {claims[0].task_id}
    assert await with_status(TaskStatus.FAILED) == {claims[1].task_id}
    assert await with_status(TaskStatus.PENDING) == {claims[2].task_id, recs[4].task_id}
    assert await with_status(TaskStatus.CANCELED) == {recs[3].task_id}
    assert await with_status(TaskStatus.RUNNING) == set()
    again = await claim_now(queue)  # the released job, taken again
    assert await with_status(TaskStatus.RUNNING) == {again.task_id}
    both = TaskFilter(start_time=time.time() - 60, end_time=time.time() + 60, status=TaskStatus.PENDING)
    assert (await queue.list_tasks("t1", dataclasses.replace(both, model="other"), 1, 10)) == ([], 0)


async def test_every_status_change_is_in_the_transitions_table(make_queue: QueueFactory) -> None:
    """Drive each lifecycle path and watch the records: every change a backend makes is one
    `TRANSITIONS` allows, and every allowed change out of PENDING and RUNNING is seen."""
    queue = make_queue()
    seen: set[tuple[TaskStatus, TaskStatus]] = set()
    last: dict[str, TaskStatus] = {}

    async def observe() -> None:
        for task_id, before in list(last.items()):
            current = await queue.get(task_id)
            assert current is not None
            if current.status != before:
                seen.add((before, current.status))
                last[task_id] = current.status

    recs = [record() for _ in range(4)]
    for rec in recs:
        await queue.submit(rec)
        last[rec.task_id] = TaskStatus.PENDING
    await queue.cancel(recs[0].task_id)  # PENDING -> CANCELED
    claims = [await claim_now(queue) for _ in range(3)]  # PENDING -> RUNNING
    await observe()
    assert await queue.complete(claims[0], result_key="k", orig_prompt="p")  # -> SUCCEEDED
    assert await queue.fail(claims[1], code="InternalError.Algo", message="x")  # -> FAILED
    await queue.release(claims[2])  # -> PENDING
    await observe()
    for final in (claims[0], claims[1]):  # a final record never changes again
        assert not await queue.complete(final, result_key="k2", orig_prompt="p")
        assert not await queue.fail(final, code="InternalError", message="late")
        assert await queue.cancel(final.task_id) is None
    assert await queue.cancel(claims[2].task_id) is not None  # released: PENDING again
    await observe()
    assert all(new in TRANSITIONS[old] for old, new in seen), seen
    assert seen >= {
        (TaskStatus.PENDING, TaskStatus.CANCELED),
        (TaskStatus.PENDING, TaskStatus.RUNNING),
        (TaskStatus.RUNNING, TaskStatus.SUCCEEDED),
        (TaskStatus.RUNNING, TaskStatus.FAILED),
        (TaskStatus.RUNNING, TaskStatus.PENDING),
    }


def test_the_table_refuses_what_it_does_not_list() -> None:
    check_transition(TaskStatus.PENDING, TaskStatus.RUNNING)
    for final in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED):
        with pytest.raises(InvalidTransition):
            check_transition(final, TaskStatus.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(TaskStatus.PENDING, TaskStatus.SUCCEEDED)


# -- depth and redis specifics ------------------------------------------------------------------
async def test_depth_counts_waiting(queue: TaskQueue) -> None:
    assert await queue.depth() == 0
    recs = [record() for _ in range(3)]
    for rec in recs:
        await queue.submit(rec)
    assert await queue.depth() == 3
    await claim_now(queue)
    assert await queue.depth() == 2
    await queue.cancel(recs[2].task_id)
    assert await queue.depth() == 1


@pytest.fixture
async def redis_only(redis_url: str) -> AsyncIterator[tuple[RedisTaskQueue, redis.Redis]]:
    """A RedisTaskQueue on a flushed db, plus a plain sync client to inspect the keys."""
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    raw.flushdb()
    queue = RedisTaskQueue.from_url(redis_url, ttl_s=86_400)
    yield queue, raw
    await queue.close()
    raw.close()


@pytest.mark.redis
async def test_redis_unacked_claim_stays_pending(redis_only: tuple[RedisTaskQueue, redis.Redis]) -> None:
    queue, raw = redis_only
    await queue.submit(record())
    claim = await claim_now(queue, "consumer-a")  # ... and the worker "crashes": no ack
    pending = raw.xpending_range("paddock:jobs", "paddock:workers", "-", "+", 10)
    assert [(p["message_id"], p["consumer"], p["times_delivered"]) for p in pending] == [
        (claim.entry_id, "consumer-a", 1)
    ]
    time.sleep(0.15)
    assert await queue.heartbeat(claim)  # XCLAIM JUSTID resets idle, keeps the delivery count
    pending = raw.xpending_range("paddock:jobs", "paddock:workers", "-", "+", 10)
    assert pending[0]["time_since_delivered"] < 100 and pending[0]["times_delivered"] == 1
    assert await queue.complete(claim, result_key="k", orig_prompt="p")
    assert raw.xpending("paddock:jobs", "paddock:workers")["pending"] == 0
    assert raw.xlen("paddock:jobs") == 0  # acked entries are deleted too
    ttl_ms = raw.pttl(f"paddock:task:{claim.task_id}")
    assert 0 < ttl_ms <= 86_400_000


@pytest.mark.redis
async def test_redis_claim_skips_expired_record(redis_only: tuple[RedisTaskQueue, redis.Redis]) -> None:
    queue, raw = redis_only
    gone, live = record(), record()
    await queue.submit(gone)
    await queue.submit(live)
    raw.delete(f"paddock:task:{gone.task_id}")  # as if its TTL ran out while queued
    assert (await claim_now(queue)).task_id == live.task_id
    assert raw.xlen("paddock:jobs") == 1  # only the live job's (pending) entry is left


@pytest.mark.redis
async def test_redis_page_reads_only_the_page(redis_only: tuple[RedisTaskQueue, redis.Redis]) -> None:
    queue, raw = redis_only
    now = time.time()
    for i in range(2000):
        await queue.submit(record(submit_time=now - 2000 + i, workspace="ws" if i % 2 else None))
    raw.config_resetstat()
    page, total = await queue.list_tasks("t1", window(), 3, 10)
    filtered, filtered_total = await queue.list_tasks("t1", window(workspace="ws"), 1, 10)
    stats = raw.info("commandstats")
    assert (len(page), total, len(filtered), filtered_total) == (10, 2000, 10, 1000)
    # Two pages: 20 record reads, not 3,000.
    assert stats["cmdstat_hgetall"]["calls"] == 20
    assert [r.submit_time for r in page] == sorted((r.submit_time for r in page), reverse=True)
    assert page[0].submit_time == pytest.approx(now - 2000 + 1979)


# -- factory ------------------------------------------------------------------------------------
async def test_factory_picks_backend() -> None:
    assert isinstance(make_task_queue("memory://", ttl_s=60), MemoryTaskQueue)
    queue = make_task_queue("redis://127.0.0.1:1/0", ttl_s=60)
    assert isinstance(queue, RedisTaskQueue)
    assert not await queue.ping()  # nothing listens on port 1: False, not an exception
    await queue.close()
    assert isinstance(make_task_queue("unix:///tmp/redis.sock?db=0", ttl_s=60), RedisTaskQueue)
    with pytest.raises(ValueError, match="unsupported queue URL scheme 'amqp'") as err:
        make_task_queue("amqp://user:secret@host/", ttl_s=60)
    assert "secret" not in str(err.value)


async def test_announced_models_are_served_until_the_announcement_runs_out(queue: TaskQueue) -> None:
    assert await queue.served_models() == set()
    await queue.announce("w1", ["m-a", "m-b"], ttl_s=30)
    await queue.announce("w2", ["m-c"], ttl_s=0.3)
    assert await queue.served_models() == {"m-a", "m-b", "m-c"}
    await asyncio.sleep(0.5)
    assert await queue.served_models() == {"m-a", "m-b"}
    await queue.announce("w1", [], ttl_s=0)  # a stopping worker withdraws
    assert await queue.served_models() == set()


# -- the operators' view: live workers, running jobs per model, failures by code ----------------
async def test_workers_are_the_live_announcements(queue: TaskQueue) -> None:
    assert await queue.workers() == {}
    await queue.announce("w1", ["m-a", "m-b"], ttl_s=30)
    await queue.announce("w2", ["m-c"], ttl_s=0.3)
    assert await queue.workers() == {"w1": frozenset({"m-a", "m-b"}), "w2": frozenset({"m-c"})}
    await asyncio.sleep(0.5)
    assert await queue.workers() == {"w1": frozenset({"m-a", "m-b"})}


async def test_running_per_model_and_failures_by_code(queue: TaskQueue) -> None:
    started = time.time()
    for model in ("m-a", "m-a", "m-b", "m-b"):
        await queue.submit(record(model=model))
    algo, done, timeout = [await claim_now(queue) for _ in range(3)]  # the 4th stays PENDING
    assert await queue.running() == {"m-a": 2, "m-b": 1}
    assert await queue.fail(algo, code="InternalError.Algo", message="boom")
    assert await queue.complete(done, result_key="r.mp4", orig_prompt="p")
    assert await queue.fail(timeout, code="InternalError.Timeout", message="too slow")
    assert not await queue.fail(algo, code="InternalError.Algo", message="again")  # fenced: not counted
    assert await queue.running() == {}
    assert await queue.failures(since=started) == {"InternalError.Algo": 1, "InternalError.Timeout": 1}
    assert await queue.failures(since=time.time() + 1) == {}
