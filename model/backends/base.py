"""The backend contract: one native-size job in, native frames (and maybe sound) out."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from model.parallel import LOCAL_RUNNER, ForwardRunner
from model.registry import ModelSpec, TaskFamily

if TYPE_CHECKING:
    from model.engine.state import JobState

ProgressFn = Callable[[int, int], None]


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


class Backend(ABC):
    """A loaded model serving one or more task families.

    Subclasses build their pipelines in `__init__` (tiny random weights when `spec.checkpoint` is
    None, else `from_pretrained` on the local folder). Two ways to run a job:

    - `generate`: the stock diffusers pipeline, one job per call. The engine's correctness anchor
      and the benchmark's baseline. Serialised by a per-instance lock because pipelines keep
      per-call state (the scheduler's step index).
    - the step API the engine drives (`prepare`, `batch_key`, `forward`, `decode`): the same
      components and maths, with the step loop outside, so steps of many jobs share a forward.
    """

    name: ClassVar[str]
    families: ClassVar[frozenset[TaskFamily]]
    # How the transformer is called: locally, or on every rank of a ParallelGroup (which sets it).
    runner: ForwardRunner = LOCAL_RUNNER
    # The diffusers step-cache config enabled on this backend's transformers, if any.
    cache: Any = None

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()

    def generate(self, job: NativeJob) -> NativeClip:
        """Run one job; raises ValueError for a family this backend does not serve."""
        if job.family not in self.families:
            raise ValueError(f"backend {self.name!r} does not serve {job.family.value}")
        with self._lock:
            return self._generate(job)

    @abstractmethod
    def _generate(self, job: NativeJob) -> NativeClip:
        """Run one job; called with the instance lock held."""

    @classmethod
    @abstractmethod
    def save_tiny(cls, folder: str | Path, seed: int = 0) -> None:
        """Write the tiny random-weight model in diffusers layout (`save_pretrained`) to `folder`."""

    # -- step API (the engine) ----------------------------------------------------------------

    @property
    def backend_id(self) -> str:
        """Distinguishes loaded instances in batch keys (two checkpoints of one backend class)."""
        return f"{self.name}@{id(self):x}"

    @property
    def max_batch_tokens(self) -> int:
        """Token budget of one batched forward (both CFG halves counted)."""
        return int(self.spec.options.get("max_batch_tokens", 1 << 20))

    @abstractmethod
    def prepare(self, job: NativeJob) -> JobState:
        """Encode the job's prompt and media and draw its initial noise, exactly as the stock
        pipeline would for the same seed. Runs once per job, at admission."""

    def batch_key(self, state: JobState) -> Hashable:
        """Jobs with equal keys share a forward. Subclasses add what else must match."""
        return state.batch_key()

    @abstractmethod
    def forward(self, states: list[JobState]) -> list[Any]:
        """One transformer call for all `states` (same key): the guided noise prediction of
        each job at its own current timestep, in order."""

    def cache_modules(self) -> list[Any]:
        """Transformers that may carry step-cache hooks (the engine releases a finished job's
        per-context hook state on them)."""
        return []

    @abstractmethod
    def decode(self, states: list[JobState]) -> list[NativeClip]:
        """Finished jobs' latents to frames. States passed together have the same latent shape."""


def torch_dtype(name: str) -> Any:
    """`"bfloat16"` -> `torch.bfloat16`; rejects names that are not torch floating dtypes."""
    import torch

    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"unknown torch dtype {name!r}")
    return dtype


def step_callback(progress: ProgressFn | None, total: int) -> Callable[..., dict[str, Any]] | None:
    """Adapt `progress(step, total)` to diffusers' `callback_on_step_end` signature (1-based steps)."""
    if progress is None:
        return None

    def _on_step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        progress(step + 1, total)
        return tensors

    return _on_step_end


def cpu_generator(seed: int) -> Any:
    """A CPU torch.Generator: the initial noise is then the same on every device type."""
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


def frames_array(frames: Any) -> np.ndarray:
    """The first video of a pipeline's `output_type="np"` result as contiguous float32 [F, H, W, 3]."""
    video = np.asarray(frames[0], dtype=np.float32)
    return np.ascontiguousarray(np.clip(video, 0.0, 1.0))
