"""The MagiHuman samplers, one instance per job so jobs at different steps share forwards.

The transformer predicts a flow velocity v for video and audio latents alike (x_t = (1 - σ) x0 +
σ noise, v = noise - x0); it never sees the timestep. Three ways to walk σ down:

- the distilled DiT: 8 DDIM-style steps without guidance, x0 = x - σ v, then fresh noise from
  the job's own generator to the next σ;
- the base DiT: 32 steps of Wan's flow UniPC with classifier-free guidance (video 5.0 while
  t > 500, then 2.0; audio 5.0);
- the super-resolution DiT: the base latent upsampled and re-noised to ZeroSNR index 220, then
  5 UniPC steps on the video alone.

The σ grid is the original's: linspace(0.999, 0, n + 1)[:-1] (0.999 as a float32), shifted by 5;
diffusers' UniPC is handed that grid (its own default starts at 1.0).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import UniPCMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor

from model.backends.magihuman.config import AUDIO, VIDEO

FLOW_SHIFT = 5.0
DISTILLED_STEPS = 8
BASE_STEPS = 32
SR_STEPS = 5
TRAIN_TIMESTEPS = 1000
VIDEO_GUIDANCE = 5.0  # while the timestep is above GUIDANCE_BOUNDARY
VIDEO_GUIDANCE_LATE = 2.0
GUIDANCE_BOUNDARY = 500
AUDIO_GUIDANCE = 5.0
SR_NOISE_INDEX = 220
SR_AUDIO_NOISE = 0.7  # share of fresh noise in the audio the SR DiT sees

# The original's σ_max: 1 - 1/1000 held in float32 (0.99900001...).
_SIGMA_MAX = float(np.float32(1.0 - 1.0 / TRAIN_TIMESTEPS))


def flow_sigmas(steps: int) -> np.ndarray:
    """The `steps` unshifted σ values, from σ_max down (σ = 0 not included), in float64."""
    return np.linspace(_SIGMA_MAX, 0.0, steps + 1)[:-1].copy()


def _shift(sigmas: np.ndarray, shift: float) -> np.ndarray:
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def shifted_sigmas(steps: int, shift: float = FLOW_SHIFT) -> torch.Tensor:
    """The `steps + 1` σ values a job walks through, ending at 0, in float32."""
    return torch.from_numpy(np.concatenate([_shift(flow_sigmas(steps), shift), [0.0]]).astype(np.float32))


def flow_timesteps(steps: int, shift: float = FLOW_SHIFT) -> torch.Tensor:
    """The integer timestep (0..1000) of each step: 1000 σ, truncated, as the original has it."""
    return torch.from_numpy((_shift(flow_sigmas(steps), shift) * TRAIN_TIMESTEPS).astype(np.int64))


def guided(cond: torch.Tensor, uncond: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance: uncond + scale (cond - uncond)."""
    return uncond + scale * (cond - uncond)


def video_guidance_scale(
    timestep: int, early: float = VIDEO_GUIDANCE, late: float = VIDEO_GUIDANCE_LATE
) -> float:
    """The base DiT's video guidance at `timestep` (0..1000): `early` while t > 500, then `late`."""
    return early if timestep > GUIDANCE_BOUNDARY else late


@dataclass(frozen=True)
class Guidance:
    """A job's classifier-free guidance scales on the base DiT: video `early` while t > 500,
    then `late`; audio `audio` throughout."""

    early: float = VIDEO_GUIDANCE
    late: float = VIDEO_GUIDANCE_LATE
    audio: float = AUDIO_GUIDANCE

    def video(self, timestep: int) -> float:
        return video_guidance_scale(timestep, self.early, self.late)

    def apply(
        self,
        timestep: int,
        cond: tuple[torch.Tensor, torch.Tensor],
        uncond: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Guided (video, audio) velocities from the conditional and unconditional ones."""
        return guided(cond[0], uncond[0], self.video(timestep)), guided(cond[1], uncond[1], self.audio)


def overwrite_first_frame(video: torch.Tensor, image_latent: torch.Tensor) -> torch.Tensor:
    """Image-to-video: the image's latent [C, 1, H, W] replaces latent frame 0 of video
    [C, T, H, W], in place, before every forward and after the last step."""
    video[:, :1] = image_latent[:, :1]
    return video


def ddim_step(
    sample: torch.Tensor, velocity: torch.Tensor, sigma: float, next_sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """x0 = x - σ v, re-noised to `next_sigma` with fresh noise (none needed at σ = 0)."""
    clean = sample - sigma * velocity
    if next_sigma == 0:
        return clean
    noise = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
    return next_sigma * noise + (1 - next_sigma) * clean


class JointSampler(ABC):
    """One job's sampler over its video and audio latents; steps run 0, 1, 2, ... in order."""

    def __init__(self, sigmas: torch.Tensor, timesteps: torch.Tensor) -> None:
        self.sigmas = sigmas  # steps + 1 values, ending at 0
        self.timesteps = timesteps  # integer timestep (0..1000) of each step
        self._next = 0

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    def step(
        self,
        index: int,
        video: torch.Tensor,
        video_velocity: torch.Tensor,
        audio: torch.Tensor,
        audio_velocity: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The latents after step `index`, from the (guided) velocities predicted at it."""
        if index != self._next:
            raise ValueError(f"step {index} out of order: this job's sampler is at step {self._next}")
        self._next += 1
        return self._advance(index, video, video_velocity, VIDEO), self._advance(
            index, audio, audio_velocity, AUDIO
        )

    @abstractmethod
    def _advance(
        self, index: int, latent: torch.Tensor, velocity: torch.Tensor, modality: int
    ) -> torch.Tensor: ...


class DistilledSampler(JointSampler):
    """The distilled DiT's sampler: 8 DDIM-style steps, no guidance; noise from the job's generator
    (video first, then audio, at each step)."""

    def __init__(
        self, generator: torch.Generator, steps: int = DISTILLED_STEPS, shift: float = FLOW_SHIFT
    ) -> None:
        super().__init__(shifted_sigmas(steps, shift), flow_timesteps(steps, shift))
        self.generator = generator

    def _advance(
        self, index: int, latent: torch.Tensor, velocity: torch.Tensor, modality: int
    ) -> torch.Tensor:
        sigma, next_sigma = float(self.sigmas[index]), float(self.sigmas[index + 1])
        return ddim_step(latent, velocity, sigma, next_sigma, self.generator)


def _unipc(steps: int, shift: float, device: torch.device | str | None) -> UniPCMultistepScheduler:
    scheduler = UniPCMultistepScheduler(
        num_train_timesteps=TRAIN_TIMESTEPS,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=shift,
    )
    scheduler.set_timesteps(sigmas=flow_sigmas(steps), device=device)  # type: ignore[arg-type]
    scheduler.set_begin_index(0)
    return scheduler


class FlowUniPCSampler(JointSampler):
    """Wan's flow UniPC (diffusers' scheduler on the original's σ grid), one solver state for the
    video latent and one for the audio latent. With `step_audio=False` (the SR stage) the audio
    latent passes through unchanged."""

    def __init__(
        self,
        steps: int = BASE_STEPS,
        shift: float = FLOW_SHIFT,
        device: torch.device | str | None = None,
        step_audio: bool = True,
    ) -> None:
        video = _unipc(steps, shift, device)
        super().__init__(video.sigmas, video.timesteps)
        self._solvers = {VIDEO: video, AUDIO: _unipc(steps, shift, device) if step_audio else None}

    def _advance(
        self, index: int, latent: torch.Tensor, velocity: torch.Tensor, modality: int
    ) -> torch.Tensor:
        solver = self._solvers[modality]
        if solver is None:
            return latent
        return solver.step(velocity, self.timesteps[index], latent, return_dict=False)[0]


def zero_snr_signal_levels() -> torch.Tensor:
    """The ZeroSNR DDPM schedule's signal level sqrt(ᾱ_t) for t = 0..999, rescaled so that t = 999
    carries no signal (the original's `ZeroSNRDDPMDiscretization()(1000, flip=True)`)."""
    betas = torch.linspace(0.00085**0.5, 0.0120**0.5, TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    levels = torch.cumprod(1.0 - betas, dim=0).to(torch.float32).sqrt()
    first, last = levels[0].clone(), levels[-1].clone()
    levels -= last
    levels *= first / (first - last)
    return levels


def sr_start_latent(
    base_video: torch.Tensor,
    height: int,
    width: int,
    generator: torch.Generator,
    noise_index: int = SR_NOISE_INDEX,
) -> torch.Tensor:
    """The SR stage's starting video latent: the base latent [C, T, h, w] upsampled trilinearly
    to [C, T, height, width], then mixed with fresh noise at the ZeroSNR level `noise_index`."""
    frames = base_video.shape[1]
    upsampled = F.interpolate(
        base_video[None], size=(frames, height, width), mode="trilinear", align_corners=True
    )[0]
    level = zero_snr_signal_levels()[noise_index].to(upsampled.device)
    noise = randn_tensor(upsampled.shape, generator=generator, device=upsampled.device, dtype=upsampled.dtype)
    return upsampled * level + noise * (1 - level**2) ** 0.5


def sr_audio_input(
    base_audio: torch.Tensor, generator: torch.Generator, noise: float = SR_AUDIO_NOISE
) -> torch.Tensor:
    """The audio latent the SR DiT sees (and leaves alone): the base audio, partly re-noised."""
    fresh = randn_tensor(
        base_audio.shape, generator=generator, device=base_audio.device, dtype=base_audio.dtype
    )
    return fresh * noise + base_audio * (1 - noise)
