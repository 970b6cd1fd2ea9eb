"""Shared checks for the backends' step API: the engine against the stock pipeline, alone and batched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from model.backends.base import Backend, NativeJob
from model.engine.engine import Engine
from model.registry import ModelSpec, TaskFamily

TOL = 1e-4


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of two frame arrays of the same shape."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


def picture(width: int, height: int, seed: int) -> Image.Image:
    """A smooth random RGB picture (noise upsampled), different per seed."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    return small.resize((width, height), Image.Resampling.BILINEAR)


def clip(width: int, height: int, frames: int, seed: int) -> np.ndarray:
    """A uint8 [frames, height, width, 3] source video: a picture drifting in brightness."""
    base = np.asarray(picture(width, height, seed), dtype=np.float32)
    ramp = np.linspace(0.0, 40.0, frames, dtype=np.float32)[:, None, None, None]
    return np.clip(base[None] + ramp, 0, 255).astype(np.uint8)


def job(
    family: TaskFamily,
    seed: int,
    *,
    width: int = 64,
    height: int = 64,
    frames: int = 17,
    steps: int = 3,
    guidance: float = 5.0,
    **media: Any,
) -> NativeJob:
    """A small native job; `media` goes to the NativeJob as is (image, reference_images, video)."""
    return NativeJob(
        family=family,
        prompt=f"prompt number {seed}",
        width=width,
        height=height,
        num_frames=frames,
        fps=8,
        seed=seed,
        num_inference_steps=steps,
        guidance_scale=guidance,
        **media,
    )


def run_together(backend: Backend, jobs: Sequence[NativeJob]) -> tuple[list[np.ndarray], list[int]]:
    """All `jobs` through one engine, admitted at the same step boundary; their frames and the
    batch size of every forward."""
    sizes: list[int] = []
    engine = Engine(observer=lambda _name, size, _seconds: sizes.append(size))
    try:
        # Holding the engine's condition keeps the loop from admitting before the last submit.
        with engine._cond:
            futures = [engine.submit(backend, j) for j in jobs]
        return [f.result().frames for f in futures], sizes
    finally:
        engine.shutdown()


def engine_frames(backend: Backend, one: NativeJob) -> np.ndarray:
    """One job alone through the engine."""
    return run_together(backend, [one])[0][0]


def assert_engine_equals_stock(backend: Backend, one: NativeJob) -> float:
    """The engine's frames for `one` equal the stock pipeline's; returns the max abs diff."""
    diff = max_diff(engine_frames(backend, one), backend.generate(one).frames)
    assert diff < TOL, diff
    return diff


def assert_batch_invariant(backend: Backend, target: NativeJob, others: Sequence[NativeJob]) -> float:
    """`target` batched with `others` (one forward per step for all) gives its frames alone."""
    alone = engine_frames(backend, target)
    together, sizes = run_together(backend, [target, *others])
    assert max(sizes) == 1 + len(others), sizes
    diff = max_diff(together[0], alone)
    assert diff < TOL, diff
    return diff


def with_options(spec: ModelSpec, **options: Any) -> ModelSpec:
    """`spec` with `options` merged in."""
    from dataclasses import replace

    return replace(spec, options={**spec.options, **options})
