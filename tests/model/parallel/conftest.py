"""Jobs, the single-process reference frames, and helpers for the parallel-group tests.

Rank 0 is the pytest process; the other ranks are spawned processes running
`model.parallel.rank_main`. One group at a time per process, so each test module owns one group.
"""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from model.backends import Backend, create_backend
from model.backends.base import NativeJob
from model.engine.engine import Engine
from model.registry import ModelSpec, TaskFamily, default_registry
from tests.videos import make_image

NAME = "happyhorse-1.0-i2v"
# 96x64, 5 frames: 2 latent frames x (64/32) x (96/32) = 12 transformer tokens, divisible by 2.
WIDTH, HEIGHT, FRAMES = 96, 64, 5
# The engine is bit-identical across ranks on CPU; the stock pipeline differs from the engine by ~1e-6.
ENGINE_TOL, STOCK_TOL = 1e-6, 1e-5


def base_spec(**changes: object) -> ModelSpec:
    """The tiny TI2V spec, one torch thread per rank (the test machine has two cores)."""
    return replace(default_registry()[NAME], options={"threads": 1}, **changes)  # type: ignore[arg-type]


def make_job(
    family: TaskFamily, seed: int, *, width: int = WIDTH, height: int = HEIGHT, frames: int = FRAMES
) -> NativeJob:
    image = None
    if family is TaskFamily.I2V:
        image = Image.open(io.BytesIO(make_image(width, height, seed=seed))).convert("RGB")
    return NativeJob(
        family=family,
        prompt=f"a horse {seed}",
        width=width,
        height=height,
        num_frames=frames,
        fps=8,
        seed=seed,
        num_inference_steps=3,
        guidance_scale=5.0,
        image=image,
    )


JOBS = [make_job(TaskFamily.T2V, 1), make_job(TaskFamily.I2V, 2)]


def engine_frames(backend: Backend, jobs: list[NativeJob], engine: Engine | None = None) -> list[np.ndarray]:
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
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="session")
def reference() -> dict[str, list[np.ndarray]]:
    """Single-process frames of `JOBS`: through the engine, and through the stock pipeline."""
    torch.set_num_threads(1)
    backend = create_backend(base_spec())
    return {"engine": engine_frames(backend, JOBS), "stock": [backend.generate(j).frames for j in JOBS]}
