"""Wan 2.1 I2V-14B (CLIP image tokens + first-frame condition channels) and Wan 2.2 I2V-A14B (no
CLIP, two experts) through `WanImageToVideoPipeline`."""

from __future__ import annotations

from typing import Any, ClassVar

from diffusers import WanImageToVideoPipeline

from model.backends.wan.backend import WanBackend
from model.backends.wan.tiny import build_i2v_components
from model.registry import TaskFamily


class WanI2VBackend(WanBackend):
    """Image-to-video with the image as a condition, not as the first latent frame.

    The transformer takes 36 channels: the 16 noisy latent channels, then 4 mask channels and
    16 channels of the VAE-encoded [image, zeros...] video, concatenated each step. Wan 2.1 also
    cross-attends to CLIP image tokens (`image_dim`), encoded once per job. The image must arrive
    already fitted to the native size.
    """

    name: ClassVar[str] = "wan-i2v"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.I2V})
    pipeline_cls: ClassVar[Any] = WanImageToVideoPipeline

    @staticmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """See `build_i2v_components`."""
        return build_i2v_components(seed, two_experts)
