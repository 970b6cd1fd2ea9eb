"""What a job becomes at admission, the same for the engine and the one-job reference loop:
its latent grid, the prompt's text features, the initial noise and the i2v first-frame latents.

The grid follows the original pipeline: `num_frames` video frames (4k + 1 from the registry's
frame rule) are (num_frames - 1) / 4 + 1 latent frames; the audio has one latent per 1/25 s of
the clip, (num_frames - 1) / fps * 25 + 1 of them, which at the released 25 fps is one per video
frame, the alignment its RoPE coordinates assume. Noise comes from the job's own generator,
audio first and then video (the original's order); the same generator keeps feeding the
distilled sampler's re-noising and the SR stage's.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from model.backends.magihuman.components import MagiHumanComponents, encode_image, encode_prompt
from model.backends.magihuman.config import AUDIO_LATENT_CHANNELS, LATENT_CHANNELS, VAE_STRIDE, VIDEO_FPS
from model.backends.magihuman.settings import SIZE_MULTIPLE, MagiHumanSettings
from model.backends.stock import cpu_generator
from model.registry import TaskFamily
from model.step import NativeJob
from model.video import fit_image


def audio_token_count(num_frames: int, fps: int) -> int:
    """Audio latents of a clip of `num_frames` frames at `fps`: 25 per second, plus one."""
    return round((num_frames - 1) * VIDEO_FPS / fps) + 1


def latent_frames(num_frames: int) -> int:
    """Video latent frames of `num_frames` frames (the VAE keeps frame 0 and packs 4 per latent after)."""
    return (num_frames - 1) // VAE_STRIDE[0] + 1


def image_pixels(image: Image.Image) -> torch.Tensor:
    """An RGB picture as [3, H, W] in [-1, 1], the VAE's input range."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


@dataclass(frozen=True)
class JobInputs:
    """A job's tensors at admission, on the model's device (fp32)."""

    text: torch.Tensor  # [tokens, text width]: the prompt's real tokens
    video: torch.Tensor  # [48, T, h, w]: first-stage noise
    audio: torch.Tensor  # [A, 64]
    base_image: torch.Tensor | None  # i2v: the first frame's latent [48, 1, h, w] at the first stage's size
    sr_image: torch.Tensor | None  # i2v with SR: the same at the job's (SR) size
    sr_grid: tuple[int, int] | None  # the SR stage's latent (height, width)
    generator: torch.Generator  # the job's noise source, past the initial draws

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        channels, frames, height, width = self.video.shape
        return channels, frames, height, width


def check_size(job: NativeJob) -> None:
    """ValueError for a native size the latent grid does not split into whole tokens."""
    if job.width % SIZE_MULTIPLE or job.height % SIZE_MULTIPLE:
        raise ValueError(
            f"magihuman needs a native size in multiples of {SIZE_MULTIPLE}, got {job.width}x{job.height}"
        )


def job_inputs(
    components: MagiHumanComponents,
    settings: MagiHumanSettings,
    job: NativeJob,
    device: torch.device,
    vae_lock: AbstractContextManager[Any],
) -> JobInputs:
    """Encode `job` once: prompt, seeded noise, and for i2v the first frame at each stage's size
    (holding `vae_lock`, the backend's guard of its VAE's per-call state)."""
    check_size(job)
    width, height = (
        (job.width, job.height) if settings.sr is None else settings.sr.base_size(job.width, job.height)
    )
    stride = VAE_STRIDE[1]
    generator = cpu_generator(job.seed)
    audio = torch.randn(
        audio_token_count(job.num_frames, job.fps), AUDIO_LATENT_CHANNELS, generator=generator
    )
    grid = (latent_frames(job.num_frames), height // stride, width // stride)
    video = torch.randn(LATENT_CHANNELS, *grid, generator=generator)
    base_image = sr_image = None
    if job.family is TaskFamily.I2V:
        if job.image is None:
            raise ValueError("i2v needs a first frame")
        first = image_pixels(fit_image(job.image, width, height)).to(device)
        with vae_lock:
            base_image = encode_image(components.vae, first)
        if settings.sr is not None:
            full = image_pixels(fit_image(job.image, job.width, job.height)).to(device)
            with vae_lock:
                sr_image = encode_image(components.vae, full)
    return JobInputs(
        text=encode_prompt(components, job.prompt).to(device),
        video=video.to(device),
        audio=audio.to(device),
        base_image=base_image,
        sr_image=sr_image,
        sr_grid=None if settings.sr is None else (job.height // stride, job.width // stride),
        generator=generator,
    )
