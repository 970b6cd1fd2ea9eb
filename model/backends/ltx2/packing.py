"""The packed form of an LTX-2 job: video and audio tokens in one tensor, which the engine steps
as one, and the scheduler pair that steps it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers.pipelines.ltx2 import pipeline_ltx2

from model.step import JobState


def pack(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """[B, Sv, Dv] video and [B, Sa, Da] audio tokens -> [B, Sv*Dv + Sa*Da]."""
    return torch.cat([video.flatten(1), audio.flatten(1)], dim=1)


def unpack(
    packed: torch.Tensor, video_shape: tuple[int, int], audio_shape: tuple[int, int]
) -> tuple[Any, Any]:
    """The inverse of `pack`, given the (tokens, features) of each part."""
    split = video_shape[0] * video_shape[1]
    batch = packed.shape[0]
    return packed[:, :split].reshape(batch, *video_shape), packed[:, split:].reshape(batch, *audio_shape)


class PackedScheduler:
    """Steps a packed video+audio tensor: each part with its own scheduler instance.

    `keep` (i2v) marks video tokens that must not move (the encoded first frame): the stock i2v
    pipeline steps only the other frames; stepping all and restoring those is the same elementwise.
    """

    def __init__(
        self,
        video: Any,
        audio: Any,
        video_shape: tuple[int, int],
        audio_shape: tuple[int, int],
        keep: torch.Tensor | None = None,
    ) -> None:
        self.video, self.audio = video, audio
        self.video_shape, self.audio_shape = video_shape, audio_shape
        self.keep = keep

    @property
    def timesteps(self) -> torch.Tensor:
        timesteps: torch.Tensor = self.video.timesteps
        return timesteps

    def split(self, packed: torch.Tensor) -> tuple[Any, Any]:
        return unpack(packed, self.video_shape, self.audio_shape)

    def step(
        self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, return_dict: bool = False
    ) -> tuple[torch.Tensor]:
        """One step of both schedulers on packed tensors; returns `(packed_prev_sample,)`."""
        del return_dict  # always a tuple, as the engine asks
        pred_video, pred_audio = self.split(model_output)
        video, audio = self.split(sample)
        new_video = self.video.step(pred_video, timestep, video, return_dict=False)[0]
        new_audio = self.audio.step(pred_audio, timestep, audio, return_dict=False)[0]
        if self.keep is not None:
            new_video = torch.where(self.keep[..., None], video, new_video)
        return (pack(new_video, new_audio),)


def packed_scheduler(
    pipe: Any, video: torch.Tensor, audio: torch.Tensor, steps: int, keep: torch.Tensor | None
) -> PackedScheduler:
    """Two copies of the pipeline's scheduler with the stock sigmas and resolution shift."""
    config = pipe.scheduler.config
    sigmas = np.linspace(1.0, 1 / steps, steps)
    mu = pipeline_ltx2.calculate_shift(
        video.shape[1],
        config.get("base_image_seq_len", 1024),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.95),
        config.get("max_shift", 2.05),
    )
    parts = []
    for _ in range(2):
        # a fresh instance, not a deepcopy: the stock path may be mutating pipe.scheduler
        scheduler = type(pipe.scheduler).from_config(config)
        pipeline_ltx2.retrieve_timesteps(scheduler, steps, video.device, None, sigmas=sigmas, mu=mu)
        scheduler.set_begin_index(0)
        parts.append(scheduler)
    video_shape, audio_shape = (video.shape[1], video.shape[2]), (audio.shape[1], audio.shape[2])
    return PackedScheduler(parts[0], parts[1], video_shape, audio_shape, keep)


def packed_sampler(state: JobState[Any]) -> PackedScheduler:
    """An LTX-2 job's sampler, which `prepare` always makes a `PackedScheduler`."""
    sampler = state.scheduler
    if not isinstance(sampler, PackedScheduler):
        raise TypeError(f"an LTX-2 job steps with a PackedScheduler, not {type(sampler).__name__}")
    return sampler
