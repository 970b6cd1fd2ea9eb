"""The step-batching engine: batching leaves a job's frames alone, progress and failures stay per
job, per-job backend state is released, shutdown hands back what was not admitted."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from model.backends import create_backend
from model.backends.base import Backend
from model.backends.wan.backend import WanBackend
from model.engine.engine import Engine
from model.registry import TaskFamily
from model.request import EngineShutdown
from model.sample_jobs import sample_job
from tests.support.specs import tiny_spec
from tests.support.stepcheck import leftover_cache_contexts, max_diff, with_options

TOL = 1e-4


def test_batching_does_not_change_a_jobs_frames(ti2v: Backend[Any]) -> None:
    batch_sizes: list[int] = []
    engine = Engine(observer=lambda _name, size, _s: batch_sizes.append(size))
    try:
        target = sample_job(TaskFamily.I2V, seed=1)
        alone = engine.run(ti2v, target).frames
        batch_sizes.clear()
        # Same latent shape: t2v and i2v of the TI2V model share forwards; a different shape does not.
        others = [sample_job(TaskFamily.T2V, seed=2), sample_job(TaskFamily.I2V, seed=5)]
        odd = sample_job(TaskFamily.T2V, seed=6, width=96)
        futures = [engine.submit(ti2v, j) for j in (target, *others, odd)]
        together = [f.result() for f in futures]
    finally:
        engine.shutdown()
    assert max_diff(together[0].frames, alone) < TOL
    assert max(batch_sizes) == 3 and 1 in batch_sizes
    assert together[3].frames.shape[2] == 96


def test_progress_reports_every_step_and_a_raising_callback_fails_only_its_job(ti2v: Backend[Any]) -> None:
    seen: list[tuple[int, int]] = []

    def stop_at_two(step: int, total: int) -> None:
        if step == 2:
            raise TimeoutError("past the limit")

    engine = Engine()
    try:
        good = engine.submit(
            ti2v, sample_job(TaskFamily.T2V, 1, steps=4, progress=lambda s, t: seen.append((s, t)))
        )
        bad = engine.submit(ti2v, sample_job(TaskFamily.T2V, 2, steps=4, progress=stop_at_two))
        assert good.result().frames.shape == (17, 64, 64, 3)
        with pytest.raises(TimeoutError):
            bad.result()
    finally:
        engine.shutdown()
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_finished_and_failed_jobs_release_their_backend_state() -> None:
    """A step cache keeps hook state per job; the engine has the backend drop it at the end of
    every job, the one that finishes and the one whose progress raises."""
    spec = with_options(tiny_spec("wan-ti2v"), cache={"type": "first_block"})
    cached = create_backend(spec)

    def fail_at_two(step: int, total: int) -> None:
        if step == 2:
            raise RuntimeError("cancelled")

    engine = Engine()
    try:
        done = engine.submit(cached, sample_job(TaskFamily.T2V, 1, steps=4))
        failed = engine.submit(cached, sample_job(TaskFamily.T2V, 2, steps=4, progress=fail_at_two))
        assert done.result().frames.shape[0] == 17
        with pytest.raises(RuntimeError, match="cancelled"):
            failed.result()
    finally:
        engine.shutdown()
    assert isinstance(cached, WanBackend)
    assert leftover_cache_contexts(cached.experts) == []


def test_shutdown_finishes_running_jobs_and_refuses_the_rest(ti2v: Backend[Any]) -> None:
    engine = Engine(max_running_jobs=1)
    started = threading.Event()
    release = threading.Event()

    def hold(step: int, total: int) -> None:
        started.set()
        release.wait(10)

    running = engine.submit(ti2v, sample_job(TaskFamily.T2V, 1, steps=2, progress=hold))
    waiting = engine.submit(ti2v, sample_job(TaskFamily.T2V, 2))
    assert started.wait(30)
    stopper = threading.Thread(target=engine.shutdown)
    stopper.start()
    with pytest.raises(EngineShutdown):
        waiting.result(timeout=30)
    release.set()
    stopper.join(30)
    assert running.result(timeout=30).frames.shape[0] == 17
    with pytest.raises(EngineShutdown):
        engine.submit(ti2v, sample_job(TaskFamily.T2V, 3))


def test_a_bad_job_fails_at_admission_without_stopping_the_loop(ti2v: Backend[Any]) -> None:
    engine = Engine()
    try:
        broken = replace(sample_job(TaskFamily.I2V, 1), image=None)
        with pytest.raises(ValueError, match="first frame"):
            engine.run(ti2v, broken)
        assert engine.run(ti2v, sample_job(TaskFamily.T2V, 2)).frames.shape[0] == 17
    finally:
        engine.shutdown()
