"""Wan 2.1 I2V-14B (CLIP image tokens + first-frame condition channels) and Wan 2.2 I2V-A14B (no
CLIP, two experts) through `WanImageToVideoPipeline`."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import torch
from diffusers import WanImageToVideoPipeline

from model.backends.base import NativeClip, NativeJob, frames_array
from model.backends.tiny import build_i2v_components
from model.backends.wan_t2v import WanExpertBackend
from model.engine.state import JobState
from model.registry import TaskFamily


class WanI2VBackend(WanExpertBackend):
    """Image-to-video with the image as a condition, not as the first latent frame.

    The transformer takes 36 channels: the 16 noisy latent channels, then 4 mask channels and
    16 channels of the VAE-encoded [image, zeros...] video, concatenated each step. Wan 2.1 also
    cross-attends to CLIP image tokens (`image_dim`), encoded once per job. The image must arrive
    already fitted to the native size.
    """

    name: ClassVar[str] = "wan-i2v"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.I2V})
    pipeline_cls: ClassVar[type] = WanImageToVideoPipeline

    @staticmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """See `build_i2v_components`."""
        return build_i2v_components(seed, two_experts)

    @property
    def uses_clip(self) -> bool:
        """Wan 2.1 I2V: the transformer has the image cross-attention branch (Wan 2.2 has none)."""
        return self.pipe.transformer.config.image_dim is not None

    def _check(self, job: NativeJob) -> None:
        super()._check(job)
        if job.image is None:
            raise ValueError("i2v needs a first frame")

    def _generate(self, job: NativeJob) -> NativeClip:
        self._check(job)
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.pipe(image=job.image, **self.stock_kwargs(job))
        frames = frames_array(out.frames)
        return NativeClip(frames=frames, fps=job.fps, timings={"pipeline_s": time.perf_counter() - started})

    def _initial_latents(self, job: NativeJob, generator: Any) -> tuple[Any, dict[str, Any]]:
        """CLIP tokens (Wan 2.1), then noise and the mask + first-frame condition from the
        pipeline's own `prepare_latents`, in the stock call's order."""
        pipe = self.pipe
        device = pipe._execution_device
        extras: dict[str, Any] = {}
        if self.uses_clip:
            extras["image_embeds"] = pipe.encode_image(job.image, device).to(pipe.transformer.dtype)
        image = pipe.video_processor.preprocess(job.image, height=job.height, width=job.width)
        latents, condition = pipe.prepare_latents(
            image.to(device, dtype=torch.float32),
            1,
            pipe.vae.config.z_dim,
            job.height,
            job.width,
            job.num_frames,
            torch.float32,
            device,
            generator,
            None,
            None,
        )
        extras["condition"] = condition
        return latents, extras

    def _model_input(self, states: list[JobState]) -> tuple[Any, dict[str, Any]]:
        """`[latents, mask + condition]` along channels per job; the CLIP tokens (if any) go in
        as a per-sample input, which `guided_forward` doubles for the unguided half as the stock
        loop passes the same image tokens to both calls."""
        hidden = torch.cat([torch.cat([s.latents, s.extras["condition"]], dim=1) for s in states])
        image = torch.cat([s.extras["image_embeds"] for s in states]) if self.uses_clip else None
        return hidden, {"encoder_hidden_states_image": image}
