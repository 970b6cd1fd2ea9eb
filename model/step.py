"""The step contract between the engine and the backends.

A job at native size (`NativeJob`) goes in; a backend encodes it once into a `JobState` whose
`extra` is the backend's own typed state; the engine groups states by `BatchKey`, has the backend
run one transformer forward per group (through a `ForwardRunner`), steps each job's sampler, and
gets a `NativeClip` back. The bottom of model/: it imports nothing from model/ but the registry
and loads no torch, so the engine, the backends and the parallel group all build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from model.registry import TaskFamily

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

# progress(step, total) after each denoising step; it may raise to stop the job (a time limit, a cancel).
ProgressFn = Callable[[int, int], None]
S = TypeVar("S")


@dataclass(frozen=True)
class NativeJob:
    """One generation at the backend's native size and frame rate, media already decoded.

    `image` is the i2v first frame, already fitted to `width` x `height`; `video` is the edit
    source as uint8 [F, height, width, 3] at `fps`; `reference_images` keep the client's order.
    """

    family: TaskFamily
    prompt: str
    width: int
    height: int
    num_frames: int
    fps: int
    seed: int
    num_inference_steps: int
    guidance_scale: float
    image: Image.Image | None = None
    reference_images: tuple[Image.Image, ...] = ()
    video: np.ndarray | None = None
    progress: ProgressFn | None = None


@dataclass(frozen=True)
class NativeClip:
    """What a backend made: float32 frames [F, h, w, 3] in [0, 1] at `fps`, and optional sound
    as float32 [channels, samples] in [-1, 1] at `sample_rate`."""

    frames: np.ndarray
    fps: int
    audio: np.ndarray | None = None
    sample_rate: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchKey:
    """Jobs with equal keys share one transformer forward.

    `variant` is what else the backend needs to match, hashable: the active expert of Wan A14B
    (it picks the weights), LTX-2's family, video grid, audio length and guidance switches.
    """

    backend_id: str
    latent_shape: tuple[int, ...]
    guided: bool
    cache_context: str | None
    variant: Hashable = None


class Sampler(Protocol):
    """A job's own sampler as the engine steps it: a diffusers scheduler, or one that steps alike."""

    def step(
        self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, return_dict: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """`(previous sample,)` after one step from `sample` with the model's `model_output`."""
        ...


@dataclass
class JobState(Generic[S]):
    """One admitted job between denoising steps.

    Everything a backend needs to run this job's next forward lives here, encoded once at
    admission: text embeddings, the initial noise, and in `extra` the backend's own typed state
    (image or condition latents, guidance settings). `scheduler` is this job's own instance (UniPC
    keeps a history of model outputs, Euler a step index), so batching never mixes sampler state
    between jobs.
    """

    job: NativeJob
    backend_id: str
    latents: torch.Tensor  # what the sampler steps, e.g. [1, C, F, H, W]
    scheduler: Sampler
    timesteps: torch.Tensor  # [steps]
    prompt_embeds: Any  # the backend's encoded prompt
    negative_embeds: Any  # None: no classifier-free guidance
    guidance_scale: float
    tokens: int  # transformer tokens of one sample (one CFG half)
    extra: S
    step: int = 0
    cache_context: str | None = None  # the step cache's hook-state context of this job, if cached

    @property
    def cfg(self) -> bool:
        return self.negative_embeds is not None

    @property
    def total_steps(self) -> int:
        return len(self.timesteps)

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    @property
    def timestep(self) -> torch.Tensor:
        return self.timesteps[self.step]

    @property
    def cost(self) -> int:
        """Tokens this job puts into one batched forward (both CFG halves)."""
        return self.tokens * (2 if self.cfg else 1)

    def batch_key(self, variant: Hashable = None) -> BatchKey:
        """This job's key: its backend, latent shape, guidance on/off, cache context, and `variant`."""
        return BatchKey(self.backend_id, tuple(self.latents.shape), self.cfg, self.cache_context, variant)


class ForwardRunner(Protocol):
    """How a backend calls its transformer: locally, or on every rank of a parallel group.

    `inputs` are keyword arguments of the transformer; every tensor among them is batch-major
    (dim 0 is the sample), so a runner may split the batch across devices.
    """

    def run(self, transformer: Any, **inputs: Any) -> torch.Tensor:
        """The transformer's output tensor for `inputs`."""
        ...


class LocalRunner:
    """The default `ForwardRunner`: one call in this process."""

    def run(self, transformer: Any, **inputs: Any) -> torch.Tensor:
        """`transformer(**inputs)`'s first output."""
        output: torch.Tensor = transformer(**inputs, return_dict=False)[0]
        return output


LOCAL_RUNNER = LocalRunner()
