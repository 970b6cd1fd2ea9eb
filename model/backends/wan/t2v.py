"""Wan 2.1 T2V (1.3B/14B) and Wan 2.2 T2V-A14B through `WanPipeline`."""

from __future__ import annotations

from typing import Any, ClassVar

from diffusers import WanPipeline

from model.backends.wan.backend import WanBackend
from model.backends.wan.tiny import build_t2v_components
from model.registry import TaskFamily


class WanT2VBackend(WanBackend):
    """Wan 2.1 T2V 1.3B/14B (16-channel VAE, transformer in=out=16, one timestep per sample) and
    Wan 2.2 T2V-A14B (the same with a low-noise `transformer_2` and `boundary_ratio`),
    text-to-video only."""

    name: ClassVar[str] = "wan-t2v"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.T2V})
    pipeline_cls: ClassVar[Any] = WanPipeline

    @staticmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """See `build_t2v_components`."""
        return build_t2v_components(seed, two_experts)
