"""Wan 2.1 VACE: reference-to-video and whole-video editing through `WanVACEPipeline`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from diffusers import WanVACEPipeline
from PIL import Image

from model.backends.base import Backend, NativeClip, NativeJob, frames_array
from model.backends.tiny import build_vace_components
from model.backends.wan import load_pretrained, pipeline_kwargs
from model.registry import ModelSpec, TaskFamily


class WanVACEBackend(Backend):
    """Wan VACE. r2v: prompt + 1..9 reference images over an empty (all-generate) video.
    video-edit: the source frames with an all-ones mask (regenerate everything, conditioned on
    the source) + 0..5 reference images.
    """

    name: ClassVar[str] = "wan-vace"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.R2V, TaskFamily.VIDEO_EDIT})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.checkpoint is None:
            pipe = WanVACEPipeline(**build_vace_components(int(spec.options.get("tiny_seed", 0))))
            pipe.to(spec.devices[0])
        else:
            pipe = load_pretrained(WanVACEPipeline, spec)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe

    def _generate(self, job: NativeJob) -> NativeClip:
        if job.family is TaskFamily.R2V and not job.reference_images:
            raise ValueError("r2v needs at least one reference image")
        video = self._source(job)
        started = time.perf_counter()
        with torch.inference_mode():
            kwargs = pipeline_kwargs(self.pipe, self.spec, job)
            out = self.pipe(video=video, mask=None, reference_images=_references(job), **kwargs)
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
