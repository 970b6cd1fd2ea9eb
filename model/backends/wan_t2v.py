"""Wan 2.1 T2V (1.3B/14B) and Wan 2.2 T2V-A14B through `WanPipeline`, and the base class the Wan
backends with an optional second expert share (`WanExpertBackend`, also under `wan_i2v`).

Wan 2.2 A14B is a two-expert mixture: `transformer` denoises while t >= boundary_ratio * 1000
(high noise), `transformer_2` after, each with its own guidance scale (`guidance_scale`,
`guidance_scale_2`). The step API therefore batches by active expert: two jobs at the same step
index may sit on different sides of the boundary (different step counts, different samplers).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Hashable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from diffusers import WanPipeline

from model.backends.base import Backend, NativeClip, NativeJob, cpu_generator, frames_array
from model.backends.tiny import build_t2v_components
from model.backends.wan import (
    decode_latents,
    encode_text,
    guided_forward,
    load_pretrained,
    pipeline_kwargs,
    wan_job_state,
)
from model.engine.caches import cache_config
from model.engine.sampler import convert_scheduler, job_scheduler
from model.engine.state import JobState
from model.parallel import LOCAL_RUNNER, ForwardRunner
from model.registry import ModelSpec, TaskFamily

# Index of the active expert in batch keys and in `extras["guidance"]`.
HIGH_NOISE, LOW_NOISE = 0, 1


class WanExpertBackend(Backend):
    """One Wan pipeline (`pipeline_cls`) with an optional low-noise expert.

    Spec options: `tiny_seed`, `two_experts` (tiny model in the A14B layout), `guidance_scale_2`
    (the low-noise expert's scale; default: the job's), `sampler` ("euler" | "unipc"), `cache`
    (a step cache on both experts, see `model.engine.caches`).
    Subclasses say how a job's initial latents are made (`_initial_latents`) and what the
    transformer takes besides them (`_model_input`).
    """

    pipeline_cls: ClassVar[type]
    # How `forward` calls a transformer; a ParallelGroup replaces it to run on every rank.
    runner: ForwardRunner = LOCAL_RUNNER

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.checkpoint is None:
            seed = int(spec.options.get("tiny_seed", 0))
            pipe = self.pipeline_cls(**self.tiny_components(seed, bool(spec.options.get("two_experts"))))
            pipe.to(spec.devices[0])
        else:
            pipe = load_pretrained(self.pipeline_cls, spec)
        pipe.set_progress_bar_config(disable=True)
        # Set on the pipeline itself so the stock call and the engine sample alike.
        pipe.scheduler = convert_scheduler(pipe.scheduler, spec.options.get("sampler"))
        self.pipe = pipe
        self.cache = cache_config(spec.options)
        if self.cache is not None:
            for module in self.cache_modules():
                module.enable_cache(self.cache)

    @staticmethod
    @abstractmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """The tiny random-weight components of `pipeline_cls`."""

    @classmethod
    def save_tiny(cls, folder: str | Path, seed: int = 0, two_experts: bool = False) -> None:
        """Write the tiny model (`two_experts`: the A14B layout) as a `pipeline_cls` folder."""
        cls.pipeline_cls(**cls.tiny_components(seed, two_experts)).save_pretrained(str(folder))

    # -- experts --------------------------------------------------------------------------------

    @property
    def boundary_timestep(self) -> float | None:
        """The timestep where the low-noise expert takes over; None with a single transformer."""
        ratio = self.pipe.config.boundary_ratio
        if ratio is None:
            return None
        return float(ratio) * float(self.pipe.scheduler.config.num_train_timesteps)

    def active_expert(self, state: JobState) -> int:
        """`HIGH_NOISE` (`transformer`) or `LOW_NOISE` (`transformer_2`) for the state's current
        timestep, by the stock loop's rule: the high-noise expert while t >= boundary."""
        boundary = self.boundary_timestep
        if boundary is None or float(state.timestep) >= boundary:
            return HIGH_NOISE
        return LOW_NOISE

    def guidance_scale_2(self, job: NativeJob) -> float:
        """The low-noise expert's guidance scale: `options.guidance_scale_2`, else the job's."""
        return float(self.spec.options.get("guidance_scale_2", job.guidance_scale))

    def stock_kwargs(self, job: NativeJob) -> dict[str, Any]:
        """`pipeline_kwargs`, plus `guidance_scale_2` for a two-expert pipeline (the stock
        pipeline rejects it otherwise). Call under `torch.inference_mode()`."""
        kwargs = pipeline_kwargs(self.pipe, self.spec, job)
        if self.pipe.config.boundary_ratio is not None:
            kwargs["guidance_scale_2"] = self.guidance_scale_2(job)
        return kwargs

    # -- step API -------------------------------------------------------------------------------

    def _check(self, job: NativeJob) -> None:
        """ValueError for a job this backend cannot run."""
        if job.family not in self.families:
            raise ValueError(f"backend {self.name!r} does not serve {job.family.value}")

    @abstractmethod
    def _initial_latents(self, job: NativeJob, generator: Any) -> tuple[Any, dict[str, Any]]:
        """The job's initial noise (drawn from `generator` as the stock call draws it) and the
        per-job conditioning the forward needs, as (latents, extras)."""

    @abstractmethod
    def _model_input(self, states: list[JobState]) -> tuple[Any, dict[str, Any]]:
        """The batched transformer input and further per-sample keyword inputs (batched)."""

    def prepare(self, job: NativeJob) -> JobState:
        """The stock `__call__` up to its loop: text embeddings, timesteps, conditioning and the
        initial latents, drawing noise from the job's seed as it does."""
        self._check(job)
        pipe = self.pipe
        with torch.inference_mode():
            embeds = encode_text(pipe, self.spec, job)
            scheduler = job_scheduler(pipe.scheduler, job.num_inference_steps, pipe._execution_device)
            latents, extras = self._initial_latents(job, cpu_generator(job.seed))
        extras["guidance"] = (job.guidance_scale, self.guidance_scale_2(job))
        return wan_job_state(self, job, pipe.transformer, latents, scheduler, embeds, extras)

    def batch_key(self, state: JobState) -> Hashable:
        """Jobs share a forward only on the same expert (it picks the transformer's weights);
        guidance scales are applied per job after the forward, so they need not match."""
        return state.batch_key(self.active_expert(state))

    def forward(self, states: list[JobState]) -> list[Any]:
        """One call of the active expert over all `states`, cond and uncond halves together,
        each job guided by its scale for that expert."""
        expert = self.active_expert(states[0])
        transformer = self.pipe.transformer if expert == HIGH_NOISE else self.pipe.transformer_2
        with torch.inference_mode():
            hidden, extra = self._model_input(states)
            hidden = hidden.to(transformer.dtype)
            # one timestep per sample, as the stock `t.expand(batch)` (no expand_timesteps here)
            timestep = torch.stack([s.timestep for s in states])
            context = torch.cat([s.prompt_embeds for s in states])
            # shallow copies carrying the active expert's scale: `guided_forward` reads `guidance_scale`
            views = [replace(s, guidance_scale=s.extras["guidance"][expert]) for s in states]
            return guided_forward(transformer, views, hidden, timestep, context, runner=self.runner, **extra)

    def cache_modules(self) -> list[Any]:
        """Both experts: each carries its own step-cache hooks."""
        return [m for m in (self.pipe.transformer, self.pipe.transformer_2) if m is not None]

    def decode(self, states: list[JobState]) -> list[NativeClip]:
        """The stock pipeline's decode, batched over jobs of one latent shape."""
        started = time.perf_counter()
        with torch.inference_mode():
            frames = decode_latents(self.pipe, torch.cat([s.latents for s in states]))
        seconds = (time.perf_counter() - started) / len(states)
        return [
            NativeClip(frames=f, fps=s.job.fps, timings={"decode_s": seconds})
            for f, s in zip(frames, states, strict=True)
        ]


class WanT2VBackend(WanExpertBackend):
    """Wan 2.1 T2V 1.3B/14B (16-channel VAE, transformer in=out=16) and Wan 2.2 T2V-A14B (the
    same with a low-noise `transformer_2` and `boundary_ratio`), text-to-video only."""

    name: ClassVar[str] = "wan-t2v"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.T2V})
    pipeline_cls: ClassVar[type] = WanPipeline

    @staticmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """See `build_t2v_components`."""
        return build_t2v_components(seed, two_experts)

    def _generate(self, job: NativeJob) -> NativeClip:
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.pipe(**self.stock_kwargs(job))
        frames = frames_array(out.frames)
        return NativeClip(frames=frames, fps=job.fps, timings={"pipeline_s": time.perf_counter() - started})

    def _initial_latents(self, job: NativeJob, generator: Any) -> tuple[Any, dict[str, Any]]:
        pipe = self.pipe
        latents = pipe.prepare_latents(
            1,
            pipe.transformer.config.in_channels,
            job.height,
            job.width,
            job.num_frames,
            torch.float32,
            pipe._execution_device,
            generator,
            None,
        )
        return latents, {}

    def _model_input(self, states: list[JobState]) -> tuple[Any, dict[str, Any]]:
        return torch.cat([s.latents for s in states]), {}
