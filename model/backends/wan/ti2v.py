"""Wan 2.2 TI2V-5B: text-to-video (`WanPipeline`) and image-to-video (`WanImageToVideoPipeline`)
from one model, the two pipeline classes sharing one set of modules."""

from __future__ import annotations

from typing import Any, ClassVar

from diffusers import WanImageToVideoPipeline, WanPipeline

from model.backends.wan.backend import WanBackend
from model.backends.wan.tiny import build_ti2v_components
from model.registry import ModelSpec, TaskFamily
from model.step import NativeJob


class WanTI2VBackend(WanBackend):
    """Wan 2.2 TI2V-5B (48-channel VAE, `expand_timesteps=True`): t2v and i2v from one model.

    i2v overwrites the first latent frame with the encoded image, so the image must arrive
    already fitted to the native size. t2v and i2v jobs both feed per-token timesteps, so jobs
    of the two families with the same latent shape share one forward.
    """

    name: ClassVar[str] = "wan-ti2v"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.T2V, TaskFamily.I2V})
    pipeline_cls: ClassVar[Any] = WanPipeline

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        pipe = self.pipe
        # same module objects (scheduler included), second pipeline class: no extra memory
        self.i2v = WanImageToVideoPipeline(
            tokenizer=pipe.tokenizer,
            text_encoder=pipe.text_encoder,
            vae=pipe.vae,
            scheduler=pipe.scheduler,
            transformer=pipe.transformer,
            transformer_2=pipe.transformer_2,
            image_encoder=None,
            image_processor=None,
            boundary_ratio=pipe.config.boundary_ratio,
            expand_timesteps=bool(pipe.config.get("expand_timesteps", True)),
        )
        self.i2v.set_progress_bar_config(disable=True)

    @staticmethod
    def tiny_components(seed: int, two_experts: bool) -> dict[str, Any]:
        """See `build_ti2v_components`."""
        return build_ti2v_components(seed, two_experts)

    def pipeline(self, job: NativeJob) -> Any:
        """`WanImageToVideoPipeline` for i2v, else `WanPipeline`."""
        return self.i2v if job.family is TaskFamily.I2V else self.pipe
