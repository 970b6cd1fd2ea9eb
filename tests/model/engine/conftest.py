"""A tiny TI2V backend and job builders for the engine tests."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image

from model.backends import create_backend
from model.backends.base import Backend, NativeJob
from model.registry import ModelSpec, TaskFamily, default_registry
from tests.videos import make_image


def ti2v_spec(**options: Any) -> ModelSpec:
    return replace(default_registry()["happyhorse-1.0-i2v"], options=options)


@pytest.fixture(scope="module")
def ti2v() -> Backend:
    return create_backend(ti2v_spec())


def make_job(
    family: TaskFamily,
    seed: int,
    *,
    width: int = 64,
    height: int = 64,
    frames: int = 17,
    steps: int = 3,
    guidance: float = 5.0,
    progress: Any = None,
) -> NativeJob:
    image = None
    if family is TaskFamily.I2V:
        image = Image.open(io.BytesIO(make_image(width * 4, height * 4, seed=seed))).convert("RGB")
        image = image.resize((width, height))
    return NativeJob(
        family=family,
        prompt=f"prompt {seed}",
        width=width,
        height=height,
        num_frames=frames,
        fps=8,
        seed=seed,
        num_inference_steps=steps,
        guidance_scale=guidance,
        image=image,
        progress=progress,
    )
