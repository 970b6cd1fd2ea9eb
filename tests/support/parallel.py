"""Jobs and helpers for the parallel-group tests (tests/model/parallel, and the Ray rank actors
of tests/server/worker): a tiny TI2V spec whose token grid splits over two ranks."""

from __future__ import annotations

from typing import Any

import numpy as np

from model.backends.base import Backend
from model.engine.engine import Engine
from model.registry import ModelSpec, TaskFamily
from model.sample_jobs import sample_job
from model.step import NativeJob
from tests.support.specs import tiny_spec

NAME = "happyhorse-1.0-i2v"
# 96x64, 5 frames: 2 latent frames x (64/32) x (96/32) = 12 transformer tokens, divisible by 2.
WIDTH, HEIGHT, FRAMES = 96, 64, 5
# The engine is bit-identical across ranks on CPU; the stock pipeline differs from the engine by ~1e-6.
ENGINE_TOL, STOCK_TOL = 1e-6, 1e-5


def base_spec(**changes: Any) -> ModelSpec:
    """The tiny TI2V spec, one torch thread per rank (the test machine has two cores)."""
    return tiny_spec("wan-ti2v", NAME, options={"threads": 1}, **changes)


def make_job(
    family: TaskFamily, seed: int, *, width: int = WIDTH, height: int = HEIGHT, frames: int = FRAMES
) -> NativeJob:
    """A 3-step job of `family` at the group's native size unless told otherwise."""
    return sample_job(family, seed, width=width, height=height, frames=frames)


# t2v and i2v of the TI2V model share each forward.
JOBS = [make_job(TaskFamily.T2V, 1), make_job(TaskFamily.I2V, 2)]


def engine_frames(
    backend: Backend[Any], jobs: list[NativeJob], engine: Engine | None = None
) -> list[np.ndarray]:
    """Submit all jobs at once (so they share forwards), then wait for their frames."""
    own = engine is None
    engine = engine or Engine()
    try:
        futures = [engine.submit(backend, job) for job in jobs]
        return [f.result(timeout=120).frames for f in futures]
    finally:
        if own:
            engine.shutdown()


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest absolute difference over pairs of frame arrays."""
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))
