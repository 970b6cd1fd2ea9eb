"""The Wan 2.2 TI2V-5B family: text-to-video (`WanPipeline`) and image-to-video
(`WanImageToVideoPipeline`) sharing one set of modules."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanPipeline

from model.backends.base import (
    Backend,
    NativeClip,
    NativeJob,
    cpu_generator,
    frames_array,
    step_callback,
    torch_dtype,
)
from model.backends.tiny import build_ti2v_components
from model.registry import ModelSpec, TaskFamily

# Real Wan checkpoints are trained with 512 text tokens.
REAL_MAX_SEQUENCE_LENGTH = 512


def load_pretrained(pipeline_cls: type, spec: ModelSpec) -> Any:
    """`pipeline_cls.from_pretrained(spec.checkpoint)` from local files only, on `spec.devices[0]`.

    The VAE stays float32 whatever `spec.dtype` is, as diffusers' own Wan examples load it
    (it is small next to the transformer); everything else takes `spec.dtype`.
    """
    if spec.checkpoint is None:
        raise ValueError(f"model {spec.name!r} has no checkpoint folder")
    folder = Path(spec.checkpoint)
    vae = AutoencoderKLWan.from_pretrained(
        folder, subfolder="vae", dtype=torch.float32, local_files_only=True
    )
    pipe = pipeline_cls.from_pretrained(folder, vae=vae, dtype=torch_dtype(spec.dtype), local_files_only=True)
    return pipe.to(spec.devices[0])


def max_sequence_length(spec: ModelSpec, pipe: Any) -> int:
    """Text tokens per prompt: `options.max_sequence_length`, else the tokenizer's
    `model_max_length` capped at 512 (what Wan is trained with; the tiny tokenizer says 64)."""
    if "max_sequence_length" in spec.options:
        return int(spec.options["max_sequence_length"])
    return min(REAL_MAX_SEQUENCE_LENGTH, int(pipe.tokenizer.model_max_length))


def encode_text(pipe: Any, spec: ModelSpec, job: NativeJob) -> dict[str, Any]:
    """The prompt (and, with CFG, the negative prompt) as UMT5 embeddings for any Wan pipeline.

    Goes through `WanPipeline`'s encoder method on purpose: the i2v and VACE pipelines call
    `ftfy.fix_text` unconditionally and fail without the optional `ftfy` package, while
    `WanPipeline` uses it only when installed. Same tokenizer and encoder, so same embeddings.
    """

    def embed(text: str) -> torch.Tensor:
        tokens = max_sequence_length(spec, pipe)
        return WanPipeline._get_t5_prompt_embeds(
            pipe, prompt=text, max_sequence_length=tokens, device=pipe._execution_device
        )

    negative = embed(str(spec.options.get("negative_prompt", ""))) if job.guidance_scale > 1.0 else None
    return {"prompt_embeds": embed(job.prompt), "negative_prompt_embeds": negative}


def pipeline_kwargs(pipe: Any, spec: ModelSpec, job: NativeJob) -> dict[str, Any]:
    """The `__call__` arguments every Wan pipeline shares, seeded from the job; call it under
    `torch.inference_mode()` (it runs the text encoder)."""
    return {
        **encode_text(pipe, spec, job),
        "height": job.height,
        "width": job.width,
        "num_frames": job.num_frames,
        "num_inference_steps": job.num_inference_steps,
        "guidance_scale": job.guidance_scale,
        "generator": cpu_generator(job.seed),
        "output_type": "np",
        "callback_on_step_end": step_callback(job.progress, job.num_inference_steps),
    }


class WanTI2VBackend(Backend):
    """Wan 2.2 TI2V-5B (48-channel VAE, `expand_timesteps=True`): t2v and i2v from one model.

    i2v overwrites the first latent frame with the encoded image, so the image must arrive
    already fitted to the native size.
    """

    name: ClassVar[str] = "wan-ti2v"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.T2V, TaskFamily.I2V})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.checkpoint is None:
            t2v = WanPipeline(**build_ti2v_components(int(spec.options.get("tiny_seed", 0))))
            t2v.to(spec.devices[0])
        else:
            t2v = load_pretrained(WanPipeline, spec)
        self.t2v = t2v
        # same module objects, second pipeline class: no extra memory
        self.i2v = WanImageToVideoPipeline(
            tokenizer=t2v.tokenizer,
            text_encoder=t2v.text_encoder,
            vae=t2v.vae,
            scheduler=t2v.scheduler,
            transformer=t2v.transformer,
            transformer_2=t2v.transformer_2,
            image_encoder=None,
            image_processor=None,
            boundary_ratio=t2v.config.boundary_ratio,
            expand_timesteps=bool(t2v.config.get("expand_timesteps", True)),
        )
        for pipe in (self.t2v, self.i2v):
            pipe.set_progress_bar_config(disable=True)

    def _generate(self, job: NativeJob) -> NativeClip:
        if job.family is TaskFamily.I2V and job.image is None:
            raise ValueError("i2v needs a first frame")
        started = time.perf_counter()
        with torch.inference_mode():
            if job.family is TaskFamily.I2V:
                out = self.i2v(image=job.image, **pipeline_kwargs(self.i2v, self.spec, job))
            else:
                out = self.t2v(**pipeline_kwargs(self.t2v, self.spec, job))
        frames = frames_array(out.frames)
        return NativeClip(frames=frames, fps=job.fps, timings={"pipeline_s": time.perf_counter() - started})

    @classmethod
    def save_tiny(cls, folder: str | Path, seed: int = 0) -> None:
        """Write the tiny TI2V model as a `WanPipeline` folder (what Wan2.2-TI2V-5B-Diffusers is)."""
        WanPipeline(**build_ti2v_components(seed)).save_pretrained(str(folder))
