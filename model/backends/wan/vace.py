"""Wan 2.1 VACE: reference-to-video and whole-video editing through `WanVACEPipeline`.

The step API keeps the VACE context (encoded source video / references + mask channels) per job
and feeds it beside the latents. Reference images add one latent frame each in front of the
video (trimmed again before decoding), so jobs with different reference counts have different
latent shapes and never share a forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from diffusers import WanVACEPipeline
from PIL import Image

from model.backends.wan.backend import WanBackend, WanConditioning
from model.backends.wan.pipeline import noise_latents
from model.backends.wan.tiny import build_vace_components
from model.registry import ModelSpec, TaskFamily
from model.step import NativeJob


class WanVACEBackend(WanBackend):
    """Wan VACE. r2v: prompt + 1..9 reference images over an empty (all-generate) video.
    video-edit: the source frames with an all-ones mask (regenerate everything, conditioned on
    the source) + 0..5 reference images.

    Spec options besides the family's: `conditioning_scale` (the VACE context's weight, one
    number or one per VACE layer; default 1.0).
    """

    name: ClassVar[str] = "wan-vace"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.R2V, TaskFamily.VIDEO_EDIT})
    pipeline_cls: ClassVar[Any] = WanVACEPipeline

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        scale = self.conditioning_scale
        if any(v != 1.0 for v in scale):
            # The weight is per layer for the whole batch, not per sample, so it cannot travel
            # with the batched inputs (CFG parallel splits every tensor input); it is the
            # model's, so the transformer fills it in itself (None means ones otherwise).
            for module in self.experts:
                module.register_forward_pre_hook(_default_scale(scale), with_kwargs=True)

    @staticmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """See `build_vace_components`."""
        return build_vace_components(seed, two_experts)

    @property
    def conditioning_scale(self) -> list[float]:
        """The VACE context weight per VACE layer (`options.conditioning_scale`)."""
        layers = len(self.pipe.transformer.config.vace_layers)
        scale = self.spec.options.get("conditioning_scale", 1.0)
        values = [float(v) for v in scale] if isinstance(scale, list | tuple) else [float(scale)] * layers
        if len(values) != layers:
            raise ValueError(f"conditioning_scale has {len(values)} values for {layers} VACE layers")
        return values

    def media_kwargs(self, job: NativeJob) -> dict[str, Any]:
        """The source video (mask None: every pixel regenerated), the references and their weight."""
        return {
            "video": _source(job),
            "mask": None,
            "reference_images": _references(job),
            "conditioning_scale": self.conditioning_scale,
        }

    def _initial_latents(
        self, pipe: Any, job: NativeJob, generator: torch.Generator
    ) -> tuple[torch.Tensor, WanConditioning]:
        """The VACE context (`preprocess_conditions` -> `prepare_video_latents` + `prepare_masks`)
        and the initial noise with one extra latent frame per reference, in the stock order."""
        device = pipe._execution_device
        video, mask, references = pipe.preprocess_conditions(
            _source(job),
            None,
            _references(job),
            1,
            job.height,
            job.width,
            job.num_frames,
            torch.float32,
            device,
        )
        context = pipe.prepare_video_latents(video, mask, references, generator, device)
        masks = pipe.prepare_masks(mask, references, generator)
        control = torch.cat([context, masks], dim=1).to(pipe.transformer.dtype)
        count = len(references[0])
        frames = job.num_frames + count * pipe.vae_scale_factor_temporal
        latents = noise_latents(pipe, job, generator, frames)
        return latents, WanConditioning(control=control, num_references=count)


def _source(job: NativeJob) -> list[Image.Image] | None:
    """The edit source as PIL frames; None for r2v (the pipeline conditions on a zero video
    with an all-ones mask)."""
    if job.family is not TaskFamily.VIDEO_EDIT or job.video is None:
        return None
    if job.video.shape[0] != job.num_frames:
        raise ValueError(f"source has {job.video.shape[0]} frames, the job wants {job.num_frames}")
    return [Image.fromarray(frame) for frame in job.video]


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
