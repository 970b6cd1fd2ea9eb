"""Sample native jobs for the tests and `paddock bench engine`: every input derived from a seed.

A job carries the media its family needs (a first frame, reference pictures, a source clip),
made in code at the job's native size, so nothing is read from disk.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from model.registry import TaskFamily
from model.step import NativeJob


def sample_picture(width: int, height: int, seed: int) -> Image.Image:
    """A smooth random RGB picture (4x4 noise upsampled), different per seed."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    return small.resize((width, height), Image.Resampling.BILINEAR)


def sample_clip(width: int, height: int, frames: int, seed: int) -> np.ndarray:
    """A uint8 [frames, height, width, 3] source video: a picture drifting in brightness."""
    base = np.asarray(sample_picture(width, height, seed), dtype=np.float32)
    ramp = np.linspace(0.0, 40.0, frames, dtype=np.float32)[:, None, None, None]
    clip: np.ndarray = np.clip(base[None] + ramp, 0, 255).astype(np.uint8)
    return clip


def sample_job(
    family: TaskFamily,
    seed: int,
    *,
    width: int = 64,
    height: int = 64,
    frames: int = 17,
    steps: int = 3,
    guidance: float = 5.0,
    fps: int = 8,
    **fields: Any,
) -> NativeJob:
    """A `family` job at `width` x `height`, `frames` frames and `fps`, with its prompt, seed and
    media from `seed`: i2v a first frame, r2v one reference picture, video-edit a source clip.
    `fields` replace any NativeJob field (other media, a prompt, `progress`)."""
    job = NativeJob(
        family=family,
        prompt=f"a horse, take {seed}",
        width=width,
        height=height,
        num_frames=frames,
        fps=fps,
        seed=seed,
        num_inference_steps=steps,
        guidance_scale=guidance,
    )
    if family is TaskFamily.I2V:
        job = replace(job, image=sample_picture(width, height, seed))
    elif family is TaskFamily.R2V:
        job = replace(job, reference_images=(sample_picture(width, height, seed + 1000),))
    elif family is TaskFamily.VIDEO_EDIT:
        job = replace(job, video=sample_clip(width, height, frames, seed))
    return replace(job, **fields)
