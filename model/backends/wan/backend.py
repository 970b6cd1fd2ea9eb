"""The Wan family's backend: one constructor sequence and one step API for every Wan pipeline,
configured by the pipeline's own flags the way diffusers' `pipelines/wan/` is.

- `expand_timesteps` (Wan 2.2 TI2V-5B): per-token timesteps, and for i2v the encoded image kept
  in latent frame 0 (timestep 0 there); otherwise one timestep per sample and, for i2v, the mask
  + first-frame condition channels concatenated to the latents.
- `transformer_2` + `boundary_ratio` (Wan 2.2 A14B): a low-noise expert takes over once
  t < boundary_ratio * 1000, with its own guidance scale (`options.guidance_scale_2`). Jobs
  batch by active expert: two jobs at the same step index may sit on either side.
- the transformer's `image_dim` (Wan 2.1 I2V): CLIP image tokens, encoded once per job.

Spec options every Wan backend reads: `tiny_seed`, `two_experts` (the tiny model in the A14B
layout), `sampler` ("euler" | "unipc", see `model.backends.samplers`), `cache` (a step cache on
every expert, see `model.backends.caches`), `guidance_scale_2`, `negative_prompt`,
`max_sequence_length`.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from model.backends.base import Backend
from model.backends.caches import cache_config, new_cache_context, release_cache_context
from model.backends.samplers import convert_scheduler, job_scheduler
from model.backends.stock import cpu_generator, frames_array
from model.backends.wan.pipeline import (
    decode_latents,
    encode_text,
    guided_forward,
    image_latents,
    load_pipeline,
    noise_latents,
    pipeline_kwargs,
)
from model.registry import ModelSpec, TaskFamily
from model.step import BatchKey, JobState, NativeClip, NativeJob

# The experts' indices in batch keys and in `WanBackend.experts`.
HIGH_NOISE, LOW_NOISE = 0, 1


@dataclass(frozen=True, kw_only=True)
class WanConditioning:
    """A Wan job's inputs besides its noise, encoded once at admission (`JobState.extra`).

    Each pipeline fills what its stock loop uses: `token_mask` (expand_timesteps: per-token
    timestep weights, 0 on a kept first frame), `first_frame` + `first_frame_mask` (TI2V i2v: the
    encoded image and where it stays), `condition` (Wan 2.1/2.2 I2V: mask + first-frame channels
    beside the latents), `image_embeds` (Wan 2.1 I2V: CLIP tokens), `control` and
    `num_references` (VACE: the context stream, and the reference frames in front of the video).
    """

    token_mask: torch.Tensor | None = None
    first_frame: torch.Tensor | None = None
    first_frame_mask: torch.Tensor | None = None
    condition: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    control: torch.Tensor | None = None
    num_references: int = 0

    def _with_first_frame(self, latents: torch.Tensor) -> torch.Tensor:
        if self.first_frame is None or self.first_frame_mask is None:
            return latents
        mask = self.first_frame_mask
        return (1 - mask) * self.first_frame + mask * latents

    def model_input(self, latents: torch.Tensor) -> torch.Tensor:
        """What the transformer takes for these latents (one sample)."""
        latents = self._with_first_frame(latents)
        return latents if self.condition is None else torch.cat([latents, self.condition], dim=1)

    def final_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """What the VAE decodes once the loop is done: the first frame kept, the references dropped."""
        return self._with_first_frame(latents)[:, :, self.num_references :]


class WanBackend(Backend[WanConditioning]):
    """One Wan pipeline class (`pipeline_cls`) serving `families`; see the module docstring.

    Subclasses name the pipeline and its tiny components; VACE adds its media and context.
    """

    pipeline_cls: ClassVar[Any]

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        pipe = load_pipeline(self.pipeline_cls, spec, self.tiny_components)
        pipe.set_progress_bar_config(disable=True)
        # Set on the pipeline itself so the stock call and the engine sample alike.
        pipe.scheduler = convert_scheduler(pipe.scheduler, spec.options.get("sampler"))
        self.pipe = pipe
        self.cache = cache_config(spec.options)
        if self.cache is not None:
            for module in self.experts:
                module.enable_cache(self.cache)

    @staticmethod
    @abstractmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """The tiny random-weight components of `pipeline_cls` (`two_experts`: the A14B layout)."""

    @classmethod
    def save_tiny(cls, folder: str | Path, seed: int = 0, two_experts: bool = False) -> None:
        """Write the tiny model (`two_experts`: the A14B layout) as a `pipeline_cls` folder."""
        cls.pipeline_cls(**cls.tiny_components(seed, two_experts)).save_pretrained(str(folder))

    # -- experts --------------------------------------------------------------------------------

    @property
    def experts(self) -> list[Any]:
        """The transformers: `transformer`, then the low-noise `transformer_2` if there is one.
        Each carries its own step-cache hooks."""
        second = getattr(self.pipe, "transformer_2", None)
        return [self.pipe.transformer] if second is None else [self.pipe.transformer, second]

    @property
    def boundary_timestep(self) -> float | None:
        """The timestep where the low-noise expert takes over; None with a single transformer."""
        ratio = self.pipe.config.boundary_ratio
        if ratio is None:
            return None
        return float(ratio) * float(self.pipe.scheduler.config.num_train_timesteps)

    def active_expert(self, state: JobState[WanConditioning]) -> int:
        """`HIGH_NOISE` (`transformer`) or `LOW_NOISE` (`transformer_2`) for the state's current
        timestep, by the stock loop's rule: the high-noise expert while t >= boundary."""
        boundary = self.boundary_timestep
        if boundary is None or float(state.timestep) >= boundary:
            return HIGH_NOISE
        return LOW_NOISE

    def guidance_scale_2(self, job: NativeJob) -> float:
        """The low-noise expert's guidance scale: `options.guidance_scale_2`, else the job's."""
        return float(self.spec.options.get("guidance_scale_2", job.guidance_scale))

    # -- stock path -----------------------------------------------------------------------------

    def pipeline(self, job: NativeJob) -> Any:
        """The stock pipeline that runs `job`."""
        return self.pipe

    def media_kwargs(self, job: NativeJob) -> dict[str, Any]:
        """The job's media as the stock `__call__` takes them."""
        return {"image": job.image} if job.family is TaskFamily.I2V else {}

    def stock_kwargs(self, pipe: Any, job: NativeJob) -> dict[str, Any]:
        """`pipeline_kwargs`, plus `guidance_scale_2` for a two-expert pipeline (the stock
        pipeline rejects it otherwise). Call under `torch.inference_mode()`."""
        kwargs = pipeline_kwargs(pipe, self.spec, job)
        if pipe.config.boundary_ratio is not None:
            kwargs["guidance_scale_2"] = self.guidance_scale_2(job)
        return kwargs

    def _generate(self, job: NativeJob) -> NativeClip:
        pipe = self.pipeline(job)
        media = self.media_kwargs(job)
        started = time.perf_counter()
        with torch.inference_mode():
            out = pipe(**media, **self.stock_kwargs(pipe, job))
        frames = frames_array(out.frames)
        return NativeClip(frames=frames, fps=job.fps, timings={"pipeline_s": time.perf_counter() - started})

    # -- step API -------------------------------------------------------------------------------

    def prepare(self, job: NativeJob) -> JobState[WanConditioning]:
        """The stock `__call__` up to its loop: text embeddings, timesteps, conditioning and the
        initial latents, drawing noise from the job's seed as it does. The embeddings take the
        transformer's dtype, as the stock pipelines cast them."""
        self.check(job)
        pipe = self.pipeline(job)
        with torch.inference_mode():
            embeds = encode_text(pipe, self.spec, job)
            scheduler = job_scheduler(pipe.scheduler, job.num_inference_steps, pipe._execution_device)
            with self.vae_lock:  # i2v and VACE encode media with the VAE
                latents, extra = self._initial_latents(pipe, job, cpu_generator(job.seed))
        transformer = pipe.transformer
        negative = embeds["negative_prompt_embeds"]
        pt, ph, pw = transformer.config.patch_size
        _, _, frames, height, width = latents.shape
        return JobState(
            job=job,
            backend_id=self.backend_id,
            latents=latents,
            scheduler=scheduler,
            timesteps=scheduler.timesteps,
            prompt_embeds=embeds["prompt_embeds"].to(transformer.dtype),
            negative_embeds=None if negative is None else negative.to(transformer.dtype),
            guidance_scale=job.guidance_scale,
            tokens=(frames // pt) * (height // ph) * (width // pw),
            extra=extra,
            cache_context=new_cache_context() if self.cache is not None else None,
        )

    def _initial_latents(
        self, pipe: Any, job: NativeJob, generator: torch.Generator
    ) -> tuple[torch.Tensor, WanConditioning]:
        """The job's initial noise, drawn from `generator` as the stock call draws it, and its
        conditioning: for i2v the CLIP tokens first (Wan 2.1), then noise and the first frame."""
        expand = bool(pipe.config.get("expand_timesteps", False))
        if job.family is not TaskFamily.I2V:
            latents = noise_latents(pipe, job, generator, job.num_frames)
            ones = torch.ones(latents.shape, dtype=torch.float32, device=latents.device)
            return latents, WanConditioning(token_mask=token_weights(ones) if expand else None)
        image_embeds = None
        if pipe.transformer.config.image_dim is not None:
            image_embeds = pipe.encode_image(job.image, pipe._execution_device).to(pipe.transformer.dtype)
        latents, condition, mask = image_latents(pipe, job, generator)
        if mask is None:
            return latents, WanConditioning(condition=condition, image_embeds=image_embeds)
        kept = WanConditioning(
            token_mask=token_weights(mask),
            first_frame=condition,
            first_frame_mask=mask,
            image_embeds=image_embeds,
        )
        return latents, kept

    def batch_key(self, state: JobState[WanConditioning]) -> BatchKey:
        """Jobs share a forward only on the same expert (it picks the transformer's weights);
        guidance scales are applied per job after the forward, so they need not match."""
        return state.batch_key(self.active_expert(state))

    def forward(self, states: list[JobState[WanConditioning]]) -> list[torch.Tensor]:
        """One call of the active expert over all `states`, cond and uncond halves together,
        each job guided by its scale for that expert."""
        expert = self.active_expert(states[0])
        transformer = self.experts[expert]
        scales = [s.guidance_scale if expert == HIGH_NOISE else self.guidance_scale_2(s.job) for s in states]
        with torch.inference_mode():
            inputs = transformer_inputs(states, transformer.dtype)
            return guided_forward(transformer, states, scales, self.runner, inputs)

    def decode(self, states: list[JobState[WanConditioning]]) -> list[NativeClip]:
        """The stock decode, batched over jobs whose final latents have one shape (equal latent
        shapes can hide different VACE reference counts: 17 frames + 1 reference vs 21 frames)."""
        started = time.perf_counter()
        frames: dict[int, Any] = {}
        with torch.inference_mode(), self.vae_lock:
            final = [s.extra.final_latents(s.latents) for s in states]
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, latents in enumerate(final):
                groups.setdefault(tuple(latents.shape), []).append(i)
            for members in groups.values():
                decoded = decode_latents(self.pipe, torch.cat([final[i] for i in members]))
                frames.update(zip(members, decoded, strict=True))
        seconds = (time.perf_counter() - started) / len(states)
        return [
            NativeClip(frames=frames[i], fps=s.job.fps, timings={"decode_s": seconds})
            for i, s in enumerate(states)
        ]

    def release(self, state: JobState[WanConditioning]) -> None:
        """Drop the job's step-cache hook state on every expert."""
        if state.cache_context is not None:
            release_cache_context(self.experts, state.cache_context)


def token_weights(mask: torch.Tensor) -> torch.Tensor:
    """Per-token timestep weights from a latent mask [1, C, F, H, W], patchified 2x2 as the
    stock `expand_timesteps` loops assume: `mask[0][0][:, ::2, ::2].flatten()`."""
    return mask[0][0][:, ::2, ::2].flatten()


def transformer_inputs(states: list[JobState[WanConditioning]], dtype: torch.dtype) -> dict[str, Any]:
    """The batched transformer inputs of `states` besides the text: latents (with their
    conditioning), timesteps (per token with expand_timesteps), CLIP tokens, VACE context."""
    inputs: dict[str, Any] = {
        "hidden_states": torch.cat([s.extra.model_input(s.latents) for s in states]).to(dtype),
        "timestep": torch.stack(
            [s.timestep if s.extra.token_mask is None else s.extra.token_mask * s.timestep for s in states]
        ),
    }
    optional = {
        "encoder_hidden_states_image": [s.extra.image_embeds for s in states],
        "control_hidden_states": [s.extra.control for s in states],
    }
    for name, values in optional.items():
        present = [v for v in values if v is not None]
        if len(present) not in (0, len(values)):
            raise ValueError(f"a batch mixes jobs with and without {name}")
        if present:
            inputs[name] = torch.cat(present)
    return inputs
