"""The step-batching engine against the stock diffusers pipelines (DESIGN.md §4's correctness anchor)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from model.backends import create_backend
from model.backends.base import Backend
from model.engine.engine import Engine, EngineShutdown
from model.registry import TaskFamily
from tests.model.engine.conftest import make_job, ti2v_spec

TOL = 1e-4


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("family", [TaskFamily.T2V, TaskFamily.I2V])
def test_one_job_equals_the_stock_pipeline(ti2v: Backend, family: TaskFamily) -> None:
    job = make_job(family, seed=3)
    engine = Engine()
    try:
        assert max_diff(engine.run(ti2v, job).frames, ti2v.generate(job).frames) < TOL
    finally:
        engine.shutdown()


def test_batching_does_not_change_a_jobs_frames(ti2v: Backend) -> None:
    batch_sizes: list[int] = []
    engine = Engine(observer=lambda _name, size, _s: batch_sizes.append(size))
    try:
        target = make_job(TaskFamily.I2V, seed=1)
        alone = engine.run(ti2v, target).frames
        batch_sizes.clear()
        # Same latent shape: t2v and i2v of the TI2V model share forwards; a different shape does not.
        others = [make_job(TaskFamily.T2V, seed=2), make_job(TaskFamily.I2V, seed=5)]
        odd = make_job(TaskFamily.T2V, seed=6, width=96)
        futures = [engine.submit(ti2v, j) for j in (target, *others, odd)]
        together = [f.result() for f in futures]
    finally:
        engine.shutdown()
    assert max_diff(together[0].frames, alone) < TOL
    assert max(batch_sizes) == 3 and 1 in batch_sizes
    assert together[3].frames.shape[2] == 96


@pytest.mark.parametrize("sampler", ["euler", "unipc"])
def test_both_samplers_equal_stock(sampler: str) -> None:
    backend = create_backend(ti2v_spec(sampler=sampler))
    job = make_job(TaskFamily.T2V, seed=4, steps=4)
    engine = Engine()
    try:
        assert max_diff(engine.run(backend, job).frames, backend.generate(job).frames) < TOL
    finally:
        engine.shutdown()


def test_progress_reports_every_step_and_a_raising_callback_fails_only_its_job(ti2v: Backend) -> None:
    seen: list[tuple[int, int]] = []

    def stop_at_two(step: int, total: int) -> None:
        if step == 2:
            raise TimeoutError("past the limit")

    engine = Engine()
    try:
        good = engine.submit(
            ti2v, make_job(TaskFamily.T2V, seed=1, steps=4, progress=lambda s, t: seen.append((s, t)))
        )
        bad = engine.submit(ti2v, make_job(TaskFamily.T2V, seed=2, steps=4, progress=stop_at_two))
        assert good.result().frames.shape == (17, 64, 64, 3)
        with pytest.raises(TimeoutError):
            bad.result()
    finally:
        engine.shutdown()
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_shutdown_finishes_running_jobs_and_refuses_the_rest(ti2v: Backend) -> None:
    engine = Engine(max_running_jobs=1)
    started = threading.Event()
    release = threading.Event()

    def hold(step: int, total: int) -> None:
        started.set()
        release.wait(10)

    running = engine.submit(ti2v, make_job(TaskFamily.T2V, seed=1, steps=2, progress=hold))
    waiting = engine.submit(ti2v, make_job(TaskFamily.T2V, seed=2))
    assert started.wait(30)
    stopper = threading.Thread(target=engine.shutdown)
    stopper.start()
    with pytest.raises(EngineShutdown):
        waiting.result(timeout=30)
    release.set()
    stopper.join(30)
    assert running.result(timeout=30).frames.shape[0] == 17
    with pytest.raises(EngineShutdown):
        engine.submit(ti2v, make_job(TaskFamily.T2V, seed=3))


def test_a_bad_job_fails_at_admission_without_stopping_the_loop(ti2v: Backend) -> None:
    engine = Engine()
    try:
        broken = make_job(TaskFamily.T2V, seed=1)
        broken = type(broken)(**{**broken.__dict__, "family": TaskFamily.I2V, "image": None})
        with pytest.raises(ValueError, match="first frame"):
            engine.run(ti2v, broken)
        assert engine.run(ti2v, make_job(TaskFamily.T2V, seed=2)).frames.shape[0] == 17
    finally:
        engine.shutdown()
