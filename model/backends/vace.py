"""Wan 2.1 VACE: reference-to-video and whole-video editing through `WanVACEPipeline`.

The step API keeps the VACE context (encoded source video / references + mask channels) per job
and feeds it beside the latents. Reference images add one latent frame each in front of the
video (trimmed again before decoding), so jobs with different reference counts have different
latent shapes and never share a forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from diffusers import WanVACEPipeline
from PIL import Image

from model.backends.base import Backend, NativeClip, NativeJob, cpu_generator, frames_array
from model.backends.tiny import build_vace_components
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


class WanVACEBackend(Backend):
    """Wan VACE. r2v: prompt + 1..9 reference images over an empty (all-generate) video.
    video-edit: the source frames with an all-ones mask (regenerate everything, conditioned on
    the source) + 0..5 reference images.

    Spec options: `tiny_seed`, `sampler` ("euler" | "unipc"), `conditioning_scale` (the VACE
    context's weight, one number or one per VACE layer; default 1.0), `cache` (a step cache,
    see `model.engine.caches`).
    """

    name: ClassVar[str] = "wan-vace"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.R2V, TaskFamily.VIDEO_EDIT})
    # How `forward` calls the transformer; a ParallelGroup replaces it to run on every rank.
    runner: ForwardRunner = LOCAL_RUNNER

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.checkpoint is None:
            pipe = WanVACEPipeline(**build_vace_components(int(spec.options.get("tiny_seed", 0))))
            pipe.to(spec.devices[0])
        else:
            pipe = load_pretrained(WanVACEPipeline, spec)
        pipe.set_progress_bar_config(disable=True)
        # Set on the pipeline itself so the stock call and the engine sample alike.
        pipe.scheduler = convert_scheduler(pipe.scheduler, spec.options.get("sampler"))
        self.pipe = pipe
        scale = self.conditioning_scale
        if any(v != 1.0 for v in scale):
            # The weight is per layer for the whole batch, not per sample, so it cannot travel
            # with the batched inputs (CFG parallel splits every tensor input); it is the
            # model's, so the transformer fills it in itself (None means ones otherwise).
            pipe.transformer.register_forward_pre_hook(_default_scale(scale), with_kwargs=True)
        self.cache = cache_config(spec.options)
        if self.cache is not None:
            pipe.transformer.enable_cache(self.cache)

    @property
    def conditioning_scale(self) -> list[float]:
        """The VACE context weight per VACE layer (`options.conditioning_scale`)."""
        layers = len(self.pipe.transformer.config.vace_layers)
        scale = self.spec.options.get("conditioning_scale", 1.0)
        values = [float(v) for v in scale] if isinstance(scale, list | tuple) else [float(scale)] * layers
        if len(values) != layers:
            raise ValueError(f"conditioning_scale has {len(values)} values for {layers} VACE layers")
        return values

    def _generate(self, job: NativeJob) -> NativeClip:
        _check(job)
        video = self._source(job)
        started = time.perf_counter()
        with torch.inference_mode():
            kwargs = pipeline_kwargs(self.pipe, self.spec, job)
            out = self.pipe(
                video=video,
                mask=None,
                reference_images=_references(job),
                conditioning_scale=self.conditioning_scale,
                **kwargs,
            )
        frames = frames_array(out.frames)
        return NativeClip(frames=frames, fps=job.fps, timings={"pipeline_s": time.perf_counter() - started})

    @staticmethod
    def _source(job: NativeJob) -> list[Image.Image] | None:
        """The edit source as PIL frames (mask=None means all ones: every pixel is regenerated)."""
        if job.family is not TaskFamily.VIDEO_EDIT:
            return None  # r2v: the pipeline conditions on a zero video with an all-ones mask
        if job.video is None:
            raise ValueError("video-edit needs a source video")
        if job.video.shape[0] != job.num_frames:
            raise ValueError(f"source has {job.video.shape[0]} frames, the job wants {job.num_frames}")
        return [Image.fromarray(frame) for frame in job.video]

    @classmethod
    def save_tiny(cls, folder: str | Path, seed: int = 0) -> None:
        """Write the tiny VACE model as a `WanVACEPipeline` folder (the Wan2.1-VACE-*-diffusers layout)."""
        WanVACEPipeline(**build_vace_components(seed)).save_pretrained(str(folder))

    # -- step API -------------------------------------------------------------------------------

    def prepare(self, job: NativeJob) -> JobState:
        """The stock `__call__` up to its loop: text embeddings, timesteps, the VACE context
        (`preprocess_conditions` -> `prepare_video_latents` + `prepare_masks`) and the initial
        noise with one extra latent frame per reference, from the job's seed as it draws them."""
        _check(job)
        pipe = self.pipe
        device = pipe._execution_device
        with torch.inference_mode():
            embeds = encode_text(pipe, self.spec, job)
            scheduler = job_scheduler(pipe.scheduler, job.num_inference_steps, device)
            generator = cpu_generator(job.seed)
            control, references = self._context(job, generator)
            frames = job.num_frames + references * pipe.vae_scale_factor_temporal
            latents = pipe.prepare_latents(
                1,
                pipe.transformer.config.in_channels,
                job.height,
                job.width,
                frames,
                torch.float32,
                device,
                generator,
                None,
            )
        extras = {"control_hidden_states": control, "num_references": references}
        return wan_job_state(self, job, pipe.transformer, latents, scheduler, embeds, extras)

    def _context(self, job: NativeJob, generator: Any) -> tuple[Any, int]:
        """The VACE context [1, 96, refs + latent frames, h, w] and the reference count."""
        pipe = self.pipe
        device = pipe._execution_device
        video, mask, references = pipe.preprocess_conditions(
            self._source(job),
            None,
            _references(job),
            1,
            job.height,
            job.width,
            job.num_frames,
            torch.float32,
            device,
        )
        latents = pipe.prepare_video_latents(video, mask, references, generator, device)
        masks = pipe.prepare_masks(mask, references, generator)
        control = torch.cat([latents, masks], dim=1).to(pipe.transformer.dtype)
        return control, len(references[0])

    def forward(self, states: list[JobState]) -> list[Any]:
        """One transformer call: every job's latents and VACE context, cond and uncond together."""
        transformer = self.pipe.transformer
        with torch.inference_mode():
            hidden = torch.cat([s.latents for s in states]).to(transformer.dtype)
            timestep = torch.stack([s.timestep for s in states])
            context = torch.cat([s.prompt_embeds for s in states])
            control = torch.cat([s.extras["control_hidden_states"] for s in states])
            return guided_forward(
                transformer,
                states,
                hidden,
                timestep,
                context,
                runner=self.runner,
                control_hidden_states=control,
            )

    def cache_modules(self) -> list[Any]:
        """The VACE transformer carries any step-cache hooks."""
        return [self.pipe.transformer]

    def decode(self, states: list[JobState]) -> list[NativeClip]:
        """The stock decode: drop the reference frames, then decode. Equal latent shapes may
        still hide different reference counts (e.g. 17 frames + 1 reference vs 21 frames), so
        jobs are decoded in groups of equal trimmed shape."""
        started = time.perf_counter()
        trimmed = [s.latents[:, :, s.extras["num_references"] :] for s in states]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, latents in enumerate(trimmed):
            groups.setdefault(tuple(latents.shape), []).append(i)
        frames: dict[int, Any] = {}
        with torch.inference_mode():
            for members in groups.values():
                decoded = decode_latents(self.pipe, torch.cat([trimmed[i] for i in members]))
                frames.update(zip(members, decoded, strict=True))
        seconds = (time.perf_counter() - started) / len(states)
        return [
            NativeClip(frames=frames[i], fps=s.job.fps, timings={"decode_s": seconds})
            for i, s in enumerate(states)
        ]


def _default_scale(values: list[float]) -> Callable[..., Any]:
    """A forward pre-hook giving the VACE transformer `values` as its per-layer context weight
    when the caller passes none (the stock pipeline passes its own, the engine does not)."""

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if kwargs.get("control_hidden_states_scale") is None:
            device = kwargs["hidden_states"].device
            # as the stock `__call__` builds it: a float32 tensor, then cast
            scale = torch.tensor(values).to(device=device, dtype=module.dtype)
            kwargs = {**kwargs, "control_hidden_states_scale": scale}
        return args, kwargs

    return hook


def _check(job: NativeJob) -> None:
    """ValueError for a job VACE cannot run."""
    if job.family not in WanVACEBackend.families:
        raise ValueError(f"backend 'wan-vace' does not serve {job.family.value}")
    if job.family is TaskFamily.R2V and not job.reference_images:
        raise ValueError("r2v needs at least one reference image")


def _references(job: NativeJob) -> list[Any] | None:
    """The reference images in the order the pipeline needs so the latents keep the client's order.

    diffusers prepends each reference latent in turn (`cat([ref, latent])` in a loop), which
    reverses the list; original VACE concatenates `[ref1, ..., refN, video]`. Passing them
    reversed restores the client's (and VACE's) order. None when there are none: the pipeline
    cannot take an empty list.
    """
    if not job.reference_images:
        return None
    return list(reversed(job.reference_images))
