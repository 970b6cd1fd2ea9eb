"""The backend contract: one native-size job in, native frames (and maybe sound) out.

The engine and the generator call backends only through `Backend`; a backend never imports the
engine. Its per-job state is `JobState[S]` with `S` its own small dataclass.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from model.registry import ModelSpec, TaskFamily
from model.step import LOCAL_RUNNER, BatchKey, ForwardRunner, JobState, NativeClip, NativeJob

if TYPE_CHECKING:
    import torch

S = TypeVar("S")


class Backend(ABC, Generic[S]):
    """A loaded model serving one or more task families.

    Subclasses build their pipelines in `__init__` (tiny random weights when `spec.checkpoint` is
    None, else `from_pretrained` on the local folder). Two ways to run a job:

    - `generate`: the stock diffusers pipeline, one job per call. The engine's correctness anchor
      and the benchmark's baseline. Serialised by a per-instance lock because pipelines keep
      per-call state (the scheduler's step index).
    - the step API the engine drives (`prepare`, `batch_key`, `forward`, `decode`, `release`):
      the same components and maths, with the step loop outside, so steps of many jobs share a
      forward.
    """

    name: ClassVar[str]
    families: ClassVar[frozenset[TaskFamily]]
    # How the transformer is called: locally, or on every rank of a ParallelGroup (which sets it).
    runner: ForwardRunner = LOCAL_RUNNER
    # The diffusers step-cache config enabled on this backend's transformers, if any.
    cache: object | None = None

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        # The engine prepares new jobs on its loop thread while it decodes finished ones on its
        # decode thread, and a VAE keeps per-call state on the module (diffusers' AutoencoderKLWan
        # clears its feature cache in encode, mid-way through another thread's decode): every use
        # of a backend's VAE, encoding an image or decoding latents, holds this lock.
        self.vae_lock = threading.Lock()

    def check(self, job: NativeJob) -> None:
        """ValueError for a job this backend cannot run: a family it does not serve, or without
        the media its family needs."""
        if job.family not in self.families:
            raise ValueError(f"backend {self.name!r} does not serve {job.family.value}")
        if job.family is TaskFamily.I2V and job.image is None:
            raise ValueError("i2v needs a first frame")
        if job.family is TaskFamily.R2V and not job.reference_images:
            raise ValueError("r2v needs at least one reference image")
        if job.family is TaskFamily.VIDEO_EDIT and job.video is None:
            raise ValueError("video-edit needs a source video")

    def generate(self, job: NativeJob) -> NativeClip:
        """Run one job through the stock pipeline; ValueError for a job `check` refuses."""
        self.check(job)
        with self._lock:
            return self._generate(job)

    @abstractmethod
    def _generate(self, job: NativeJob) -> NativeClip:
        """Run one checked job; called with the instance lock held."""

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
    def prepare(self, job: NativeJob) -> JobState[S]:
        """Check the job, encode its prompt and media and draw its initial noise, exactly as the
        stock pipeline would for the same seed. Runs once per job, at admission."""

    def batch_key(self, state: JobState[S]) -> BatchKey:
        """Jobs with equal keys share a forward. Subclasses add what else must match."""
        return state.batch_key()

    @abstractmethod
    def forward(self, states: list[JobState[S]]) -> list[torch.Tensor]:
        """One transformer call for all `states` (same key): the guided noise prediction of
        each job at its own current timestep, in order."""

    @abstractmethod
    def decode(self, states: list[JobState[S]]) -> list[NativeClip]:
        """Finished jobs' latents to frames. States passed together have the same latent shape."""

    def release(self, state: JobState[S]) -> None:
        """Free what a finished or failed job holds outside its state (a step cache's hook state
        for its context). The engine calls it once per admitted job."""
