"""MagiHuman test helpers: random job states for the transformer and packing tests, and clips
run through the engine for the backend tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from model.backends.base import Backend
from model.backends.magihuman.components import TINY_TEXT_WIDTH
from model.backends.magihuman.config import AUDIO_LATENT_CHANNELS, LATENT_CHANNELS
from model.backends.magihuman.packing import SampleInput
from model.engine.engine import Engine
from model.registry import ModelSpec, TaskFamily
from model.sample_jobs import sample_job
from model.step import NativeClip, NativeJob

# The engine packs jobs (a masked SDPA over padded samples) where the reference runs each alone:
# the same maths in another rounding order, through 3 steps and both VAEs.
TOL = 1e-4
SR_OPTIONS = {"sr": {"base_pixels": 32 * 32, "steps": 2}}


def magihuman_spec(**options: Any) -> ModelSpec:
    """The tiny MagiHuman model (3 steps unless a job says otherwise) with `options`."""
    return ModelSpec(
        name="happyhorse-1.0-t2v",
        family=TaskFamily.T2V,
        backend="magihuman",
        size_multiple=32,
        num_inference_steps=3,
        options=options,
    )


def make_job(
    seed: int,
    family: TaskFamily = TaskFamily.T2V,
    *,
    width: int = 64,
    height: int = 64,
    frames: int = 9,
    steps: int = 3,
    **fields: Any,
) -> NativeJob:
    """A 64x64 clip of 9 frames at 8 fps (3 latent frames, 26 audio latents) in 3 steps, unless
    told otherwise; `fields` replace any NativeJob field."""
    return sample_job(family, seed, width=width, height=height, frames=frames, steps=steps, **fields)


def make_sample(
    frames: int, height: int, width: int, text_tokens: int, seed: int, audio: int | None = None
) -> SampleInput:
    """Random job state: a [48, frames, height, width] video latent, the matching audio latent
    ((frames - 1) x 4 + 1 tokens unless `audio` says otherwise) and `text_tokens` text features."""
    generator = torch.Generator().manual_seed(seed)
    audio_tokens = audio if audio is not None else (frames - 1) * 4 + 1
    return SampleInput(
        video=torch.randn(LATENT_CHANNELS, frames, height, width, generator=generator),
        audio=torch.randn(audio_tokens, AUDIO_LATENT_CHANNELS, generator=generator),
        text=torch.randn(text_tokens, TINY_TEXT_WIDTH, generator=generator),
    )


def clip_diff(a: NativeClip, b: NativeClip) -> float:
    """Largest absolute difference over two clips' frames and sound (same shapes asserted)."""
    assert a.frames.shape == b.frames.shape and a.audio is not None and b.audio is not None
    assert a.audio.shape == b.audio.shape and a.sample_rate == b.sample_rate
    return max(float(np.abs(a.frames - b.frames).max()), float(np.abs(a.audio - b.audio).max()))


def clips_together(backend: Backend[Any], jobs: Sequence[NativeJob]) -> tuple[list[NativeClip], list[int]]:
    """All `jobs` through one engine, admitted at the same step boundary: their clips and the
    batch size of every forward, in order."""
    sizes: list[int] = []
    engine = Engine(observer=lambda _name, size, _seconds: sizes.append(size))
    try:
        # Holding the engine's condition keeps the loop from admitting before the last submit.
        with engine._cond:
            futures = [engine.submit(backend, job) for job in jobs]
        return [future.result(timeout=120) for future in futures], sizes
    finally:
        engine.shutdown()
