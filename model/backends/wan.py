"""The Wan 2.2 TI2V-5B family: text-to-video (`WanPipeline`) and image-to-video
(`WanImageToVideoPipeline`) sharing one set of modules."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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
from model.engine.caches import cache_config
from model.engine.sampler import convert_scheduler, job_scheduler
from model.engine.state import JobState
from model.parallel import LOCAL_RUNNER, ForwardRunner
from model.registry import ModelSpec, TaskFamily

if TYPE_CHECKING:
    from collections.abc import Sequence

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
    # How `forward` calls the transformer; a ParallelGroup replaces it to run on every rank.

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
        scheduler = convert_scheduler(t2v.scheduler, spec.options.get("sampler"))
        for pipe in (self.t2v, self.i2v):
            pipe.set_progress_bar_config(disable=True)
            pipe.scheduler = scheduler
        self.cache = cache_config(spec.options)
        if self.cache is not None:
            t2v.transformer.enable_cache(self.cache)

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

    # -- step API -------------------------------------------------------------------------------
    # t2v and i2v jobs both feed per-token timesteps ([B, seq], expand_timesteps), so jobs of the
    # two families with the same latent shape share one forward.

    def prepare(self, job: NativeJob) -> JobState:
        """Steps 3-5 of the stock `__call__`: text embeddings, timesteps, initial latents (and for
        i2v the encoded first frame and its mask), drawing noise from the job's seed as it does."""
        pipe = self.i2v if job.family is TaskFamily.I2V else self.t2v
        device = pipe._execution_device
        with torch.inference_mode():
            embeds = encode_text(pipe, self.spec, job)
            scheduler = job_scheduler(pipe.scheduler, job.num_inference_steps, device)
            generator = cpu_generator(job.seed)
            extras: dict[str, Any] = {}
            if job.family is TaskFamily.I2V:
                if job.image is None:
                    raise ValueError("i2v needs a first frame")
                image = pipe.video_processor.preprocess(job.image, height=job.height, width=job.width)
                image = image.to(device, dtype=torch.float32)
                latents, condition, mask = pipe.prepare_latents(
                    image,
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
            else:
                channels = pipe.transformer.config.in_channels
                latents = pipe.prepare_latents(
                    1, channels, job.height, job.width, job.num_frames, torch.float32, device, generator, None
                )
                mask = torch.ones(latents.shape, dtype=torch.float32, device=device)
        extras["mask"] = mask
        # Per-token timestep weights (0 for the clean first frame of i2v), patch 2x2 as the pipelines assume.
        extras["token_mask"] = mask[0][0][:, ::2, ::2].flatten()
        return wan_job_state(self, job, pipe.transformer, latents, scheduler, embeds, extras)

    def cache_modules(self) -> list[Any]:
        return [self.t2v.transformer]

    def forward(self, states: list[JobState]) -> list[Any]:
        """One transformer call: [cond of every job, then uncond of every job] when guided."""
        transformer = self.t2v.transformer
        with torch.inference_mode():
            hidden = torch.cat([_model_input(s) for s in states]).to(transformer.dtype)
            timestep = torch.stack([s.extras["token_mask"] * s.timestep for s in states])
            context = torch.cat([s.prompt_embeds for s in states])
            return guided_forward(transformer, states, hidden, timestep, context, runner=self.runner)

    def decode(self, states: list[JobState]) -> list[NativeClip]:
        """The stock pipeline's decode, batched over jobs of one latent shape."""
        started = time.perf_counter()
        with torch.inference_mode():
            latents = torch.cat([_model_input(s) for s in states])
            frames = decode_latents(self.t2v, latents)
        seconds = (time.perf_counter() - started) / len(states)
        return [
            NativeClip(frames=f, fps=s.job.fps, timings={"decode_s": seconds})
            for f, s in zip(frames, states, strict=True)
        ]


def _model_input(state: JobState) -> Any:
    """i2v keeps the encoded first frame in latent frame 0; t2v's mask is all ones."""
    mask = state.extras["mask"]
    if "condition" not in state.extras:
        return state.latents
    return (1 - mask) * state.extras["condition"] + mask * state.latents


def guided_forward(
    transformer: Any,
    states: Sequence[JobState],
    hidden: Any,
    timestep: Any,
    context_embeds: Any,
    *,
    runner: ForwardRunner = LOCAL_RUNNER,
    **extra: Any,
) -> list[Any]:
    """Run `transformer` once over the batch, the unguided half appended when the jobs use CFG,
    and combine each job's halves as the stock pipelines do: uncond + g * (cond - uncond).

    `extra` holds further per-sample inputs (already batched over `states`), doubled with the rest.
    `runner` calls the transformer (locally, or on every rank of a ParallelGroup).
    """
    if states[0].cache_context is not None:
        # A cached job runs alone in its batch, in a hook-state context of its own.
        state = states[0]
        context = transformer.cache_context(
            state.cache_context,
            step_index=state.step,
            num_inference_steps=state.total_steps,
            timestep=state.timestep,
            sigma=float(state.scheduler.sigmas[state.step]),
        )
        with context:
            return _guided_call(runner, transformer, states, hidden, timestep, context_embeds, extra)
    return _guided_call(runner, transformer, states, hidden, timestep, context_embeds, extra)


def _guided_call(
    runner: ForwardRunner,
    transformer: Any,
    states: Sequence[JobState],
    hidden: Any,
    timestep: Any,
    context: Any,
    extra: dict[str, Any],
) -> list[Any]:
    n = len(states)
    guided = states[0].cfg
    if guided:
        hidden = torch.cat([hidden, hidden])
        timestep = torch.cat([timestep, timestep])
        context = torch.cat([context, torch.cat([s.negative_embeds for s in states])])
        extra = {k: None if v is None else torch.cat([v, v]) for k, v in extra.items()}
    out = runner.run(
        transformer, hidden_states=hidden, timestep=timestep, encoder_hidden_states=context, **extra
    )
    if not guided:
        return [out[i : i + 1] for i in range(n)]
    cond, uncond = out[:n], out[n:]
    return [
        uncond[i : i + 1] + s.guidance_scale * (cond[i : i + 1] - uncond[i : i + 1])
        for i, s in enumerate(states)
    ]


def wan_job_state(
    backend: Backend,
    job: NativeJob,
    transformer: Any,
    latents: Any,
    scheduler: Any,
    embeds: dict[str, Any],
    extras: dict[str, Any],
) -> JobState:
    """A Wan-family job's state: text embeddings in the transformer's dtype (as the stock
    pipelines cast them), its token count, and a cache context of its own if the backend caches."""
    dtype = transformer.dtype
    negative = embeds["negative_prompt_embeds"]
    pt, ph, pw = transformer.config.patch_size
    _, _, frames, height, width = latents.shape
    return JobState(
        job=job,
        backend_id=backend.backend_id,
        latents=latents,
        scheduler=scheduler,
        timesteps=scheduler.timesteps,
        prompt_embeds=embeds["prompt_embeds"].to(dtype),
        negative_embeds=None if negative is None else negative.to(dtype),
        guidance_scale=job.guidance_scale,
        tokens=(frames // pt) * (height // ph) * (width // pw),
        extras=extras,
        cache_context=new_cache_context() if backend.cache is not None else None,
    )


def new_cache_context() -> str:
    """A hook-state context name no other job uses."""
    return f"job-{uuid.uuid4().hex}"


def decode_latents(pipe: Any, latents: Any) -> list[Any]:
    """Un-normalise Wan latents, VAE-decode and post-process to float32 [F, H, W, 3] per sample,
    exactly as the stock pipelines end."""
    vae = pipe.vae
    latents = latents.to(device=vae.device, dtype=vae.dtype)
    z_dim = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(latents.device, latents.dtype)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(
        latents.device, latents.dtype
    )
    video = vae.decode(latents / inv_std + mean, return_dict=False)[0]
    frames = pipe.video_processor.postprocess_video(video, output_type="np")
    return [frames_array(frames[i : i + 1]) for i in range(len(frames))]
