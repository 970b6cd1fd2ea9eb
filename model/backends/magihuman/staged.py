"""A MagiHuman job as the engine steps it: one packed latent, one sampler, one or two stages.

The engine steps ONE tensor per job with `scheduler.step(prediction, timestep, latents)`. A job
here has a video latent [48, T, h, w] and an audio latent [A, 64], so `JobState.latents` is the
packed form `[1, 48*T*h*w + A*64]` (video first) and the transformer's velocities come back
packed the same way. `StagedSampler` is both the job's `JobState.scheduler` and its `extra`:

- it splits a packed tensor, steps video and audio with the stage's `JointSampler` (in order:
  it keeps the step index itself and ignores the engine's timestep), and packs the result;
- image-to-video: after every step the image's latent overwrites latent frame 0, as the
  original does before every forward and after its loop (the initial noise is overwritten at
  admission);
- with a super-resolution stage, the step that ends the base stage also starts the SR one: the
  base audio is kept as the job's sound, the video is upsampled and re-noised, the audio the SR
  DiT sees is re-noised, and the SR image latent goes into frame 0. The packed latent changes
  shape there, which is why batch keys leave the latent shape out and name the stage instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from model.backends.magihuman.samplers import (
    DistilledSampler,
    FlowUniPCSampler,
    JointSampler,
    overwrite_first_frame,
    sr_audio_input,
    sr_start_latent,
)
from model.backends.magihuman.settings import MagiHumanSettings, SRSettings
from model.step import JobState

BASE, SR = "base", "sr"


@dataclass(frozen=True)
class Stage:
    """One denoising stage of a job: its transformer (`name`), sampler and latent sizes."""

    name: str
    sampler: JointSampler
    video_shape: tuple[int, int, int, int]  # [48, T, h, w]
    audio_tokens: int
    image: torch.Tensor | None  # i2v: the first frame's latent at this stage's size
    guided: bool  # CFG: an unguided copy rides in the same forward
    tokens: int  # packed rows the job puts into one forward of this stage (both copies)


def first_stage_sampler(
    settings: MagiHumanSettings, steps: int, generator: torch.Generator, device: torch.device
) -> JointSampler:
    """The base stage's sampler: the distilled DDIM-style steps, or the base DiT's flow UniPC."""
    if settings.guided:
        return FlowUniPCSampler(steps, device=device)
    return DistilledSampler(generator, steps)


def sr_stage_sampler(sr: SRSettings, device: torch.device) -> JointSampler:
    """The SR stage's sampler: flow UniPC on the video, the audio left as it is."""
    return FlowUniPCSampler(sr.steps, device=device, step_audio=False)


def pack(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Video [48, T, h, w] and audio [A, 64] -> [1, 48*T*h*w + A*64]."""
    return torch.cat([video.flatten(), audio.flatten()])[None]


class StagedSampler:
    """One job's stages and its place in them; see the module docstring."""

    def __init__(self, stages: list[Stage], generator: torch.Generator, sr: SRSettings | None = None) -> None:
        if len(stages) == 2 and sr is None:
            raise ValueError("a second stage needs the SR settings")
        self.stages = stages
        self.generator = generator
        self.sr = sr
        self.base_audio: torch.Tensor | None = None  # the job's sound once the base stage is done
        self._stage = 0
        self._step = 0  # within the stage

    @property
    def stage(self) -> Stage:
        return self.stages[self._stage]

    @property
    def timesteps(self) -> torch.Tensor:
        """Every step's integer timestep, all stages in order (the engine counts them)."""
        return torch.cat([stage.sampler.timesteps.cpu() for stage in self.stages])

    @property
    def timestep(self) -> int:
        """The current step's timestep (0..1000) within its stage."""
        return int(self.stage.sampler.timesteps[self._step])

    def split(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The current stage's video [48, T, h, w] and audio [A, 64] views of `packed`."""
        stage = self.stage
        size = stage.video_shape[0] * stage.video_shape[1] * stage.video_shape[2] * stage.video_shape[3]
        flat = packed.reshape(-1)
        return flat[:size].reshape(stage.video_shape), flat[size:].reshape(stage.audio_tokens, -1)

    def initial(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The packed latent the first step starts from (frame 0 already the image's for i2v)."""
        video = video.clone()
        if self.stage.image is not None:
            overwrite_first_frame(video, self.stage.image)
        return pack(video, audio)

    def step(
        self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, return_dict: bool = False
    ) -> tuple[torch.Tensor]:
        """One step of the current stage on packed tensors; returns `(packed next sample,)`."""
        del timestep, return_dict  # the stage's sampler keeps its own place; always a tuple
        stage = self.stage
        video, audio = self.split(sample)
        video_velocity, audio_velocity = self.split(model_output)
        video, audio = stage.sampler.step(self._step, video, video_velocity, audio, audio_velocity)
        self._step += 1
        if stage.image is not None:
            overwrite_first_frame(video, stage.image)  # a new tensor: no sampler holds it
        if self._step == stage.sampler.num_steps and self._stage + 1 < len(self.stages):
            video, audio = self._start_sr(video, audio)
        return (pack(video, audio),)

    def _start_sr(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.sr is not None
        self.base_audio = audio
        self._stage, self._step = self._stage + 1, 0
        stage = self.stage
        _, _, height, width = stage.video_shape
        video = sr_start_latent(video, height, width, self.generator, self.sr.noise_index)
        audio = sr_audio_input(audio, self.generator, self.sr.audio_noise)
        if stage.image is not None:
            overwrite_first_frame(video, stage.image)
        return video, audio

    def result(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The finished job's video latent and its sound's latent (the base stage's audio)."""
        video, audio = self.split(packed)
        return video, audio if self.base_audio is None else self.base_audio


class MagiHumanState(JobState[StagedSampler]):
    """A MagiHuman job between steps; its cost follows the stage it is in (the SR stage has
    more video tokens and no unguided copy)."""

    @property
    def cost(self) -> int:
        return self.extra.stage.tokens
