"""What every Wan pipeline shares, used the way its stock `__call__` uses it: loading, text
encoding, initial latents, the guided transformer call and the VAE decode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan, WanPipeline

from model.backends.stock import cpu_generator, frames_array, step_callback, torch_dtype
from model.registry import ModelSpec
from model.step import ForwardRunner, JobState, NativeJob

# Real Wan checkpoints are trained with 512 text tokens.
REAL_MAX_SEQUENCE_LENGTH = 512

TinyComponents = Callable[[int, bool], dict[str, Any]]


def load_pipeline(pipeline_cls: Any, spec: ModelSpec, tiny_components: TinyComponents) -> Any:
    """`pipeline_cls` on `spec.devices[0]`: the tiny random-weight model (`options.tiny_seed`,
    `options.two_experts`) when `spec.checkpoint` is None, else `from_pretrained` from local files
    only. The VAE stays float32 whatever `spec.dtype` is, as diffusers' own Wan examples load it
    (it is small next to the transformer); everything else takes `spec.dtype`."""
    if spec.checkpoint is None:
        seed = int(spec.options.get("tiny_seed", 0))
        pipe = pipeline_cls(**tiny_components(seed, bool(spec.options.get("two_experts"))))
    else:
        folder = Path(spec.checkpoint)
        vae = AutoencoderKLWan.from_pretrained(  # type: ignore[no-untyped-call]  # untyped in diffusers
            folder, subfolder="vae", dtype=torch.float32, local_files_only=True
        )
        pipe = pipeline_cls.from_pretrained(
            folder, vae=vae, dtype=torch_dtype(spec.dtype), local_files_only=True
        )
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

    def embed(text: str) -> Any:
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


def noise_latents(pipe: Any, job: NativeJob, generator: torch.Generator, num_frames: int) -> Any:
    """Initial noise [1, C, latent frames, h, w] for `num_frames` video frames, drawn from
    `generator` as the t2v and VACE pipelines' `prepare_latents` draw it."""
    return pipe.prepare_latents(
        1,
        pipe.transformer.config.in_channels,
        job.height,
        job.width,
        num_frames,
        torch.float32,
        pipe._execution_device,
        generator,
        None,
    )


def image_latents(pipe: Any, job: NativeJob, generator: torch.Generator) -> tuple[Any, Any, Any | None]:
    """`WanImageToVideoPipeline.prepare_latents` for the job's first frame: (noise, condition,
    first-frame mask). With `expand_timesteps` (TI2V) the condition is the encoded image that
    overwrites latent frame 0 where the mask is 0; without, it is the mask + first-frame channels
    fed beside the latents, and the mask is None."""
    device = pipe._execution_device
    image = pipe.video_processor.preprocess(job.image, height=job.height, width=job.width)
    out = pipe.prepare_latents(
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
    if pipe.config.expand_timesteps:
        latents, condition, mask = out
        return latents, condition, mask
    latents, condition = out
    return latents, condition, None


def guided_forward(
    transformer: Any,
    states: Sequence[JobState[Any]],
    scales: Sequence[float],
    runner: ForwardRunner,
    inputs: dict[str, Any],
) -> list[torch.Tensor]:
    """Run `transformer` once over the batch, the unguided half appended when the jobs use CFG,
    and combine each job's halves as the stock pipelines do: uncond + g * (cond - uncond), with
    `scales[i]` as job i's g.

    `inputs` are the transformer's batched keyword inputs besides the text context, which comes
    from the states; each is doubled for the unguided half. `runner` calls the transformer
    (locally, or on every rank of a ParallelGroup).
    """
    if states[0].cache_context is None:
        return _guided_call(runner, transformer, states, scales, inputs)
    # A cached job runs alone in its batch, in a hook-state context of its own.
    state = states[0]
    sampler: Any = state.scheduler
    with transformer.cache_context(
        state.cache_context,
        step_index=state.step,
        num_inference_steps=state.total_steps,
        timestep=state.timestep,
        sigma=float(sampler.sigmas[state.step]),
    ):
        return _guided_call(runner, transformer, states, scales, inputs)


def _guided_call(
    runner: ForwardRunner,
    transformer: Any,
    states: Sequence[JobState[Any]],
    scales: Sequence[float],
    inputs: dict[str, Any],
) -> list[torch.Tensor]:
    n = len(states)
    guided = states[0].cfg
    context = torch.cat([s.prompt_embeds for s in states])
    if guided:
        inputs = {k: None if v is None else torch.cat([v, v]) for k, v in inputs.items()}
        context = torch.cat([context, torch.cat([s.negative_embeds for s in states])])
    out = runner.run(transformer, encoder_hidden_states=context, **inputs)
    if not guided:
        return [out[i : i + 1] for i in range(n)]
    cond, uncond = out[:n], out[n:]
    return [uncond[i : i + 1] + g * (cond[i : i + 1] - uncond[i : i + 1]) for i, g in enumerate(scales)]


def decode_latents(pipe: Any, latents: torch.Tensor) -> list[Any]:
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
