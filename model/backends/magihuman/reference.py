"""The one-job reference loop: the original pipeline's `evaluate` and `evaluate_with_latent`,
written plainly, with paddock's modules.

One job at a time, the conditional and unconditional predictions as two transformer calls of
one sample each, the image latent written into frame 0 in place before every forward and after
the loop, then the optional SR stage the same way. It shares the admission (`job_inputs`) and the
samplers with the engine path and nothing of its packing of many jobs, its runner or its
stepping; the backend's `_generate` runs it, so it is both the engine's correctness anchor and
the benchmark's baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from model.backends.magihuman.entry import StageModel
from model.backends.magihuman.inputs import JobInputs
from model.backends.magihuman.packing import SampleInput, pack, unpack
from model.backends.magihuman.samplers import (
    Guidance,
    JointSampler,
    overwrite_first_frame,
    sr_audio_input,
    sr_start_latent,
)
from model.backends.magihuman.settings import MagiHumanSettings
from model.backends.magihuman.staged import first_stage_sampler, sr_stage_sampler
from model.step import NativeJob


def predict(
    model: StageModel, video: torch.Tensor, audio: torch.Tensor, text: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample through the stage's transformer: (video velocity, audio velocity)."""
    batch = pack([SampleInput(video, audio, text)], model.packing)
    return unpack(batch, *model.transformer(batch))[0]


def denoise(
    model: StageModel,
    sampler: JointSampler,
    latents: tuple[torch.Tensor, torch.Tensor],
    prompts: tuple[torch.Tensor, torch.Tensor | None],
    image: torch.Tensor | None,
    guidance: Guidance,
    step_done: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every step of one stage: `latents` are (video, audio), `prompts` (text, negative text or
    None without guidance); `step_done()` is called after each step."""
    video, audio = latents
    text, negative = prompts
    for index in range(sampler.num_steps):
        if image is not None:
            overwrite_first_frame(video, image)
        velocity = predict(model, video, audio, text)
        if negative is not None:
            unguided = predict(model, video, audio, negative)
            velocity = guidance.apply(int(sampler.timesteps[index]), velocity, unguided)
        video, audio = sampler.step(index, video, velocity[0], audio, velocity[1])
        if step_done is not None:
            step_done()
    if image is not None:
        overwrite_first_frame(video, image)
    return video, audio


def reference_latents(
    models: dict[str, StageModel],
    settings: MagiHumanSettings,
    inputs: JobInputs,
    negative: torch.Tensor | None,
    job: NativeJob,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The finished (video, audio) latents of one job; `models` maps "base" (and "sr") to their
    stage. Reports `job.progress(step, total)` over both stages."""
    device = inputs.video.device
    guidance = Guidance(job.guidance_scale, settings.late_guidance_scale, settings.audio_guidance_scale)
    base = first_stage_sampler(settings, job.num_inference_steps, inputs.generator, device)
    sr = None if settings.sr is None else sr_stage_sampler(settings.sr, device)
    total = base.num_steps + (0 if sr is None else sr.num_steps)
    done = 0

    def step_done() -> None:
        nonlocal done
        done += 1
        if job.progress is not None:
            job.progress(done, total)

    video, audio = denoise(
        models["base"],
        base,
        (inputs.video.clone(), inputs.audio.clone()),
        (inputs.text, negative if settings.guided else None),
        inputs.base_image,
        guidance,
        step_done,
    )
    if settings.sr is None or sr is None or inputs.sr_grid is None:
        return video, audio
    height, width = inputs.sr_grid
    sr_video = sr_start_latent(video, height, width, inputs.generator, settings.sr.noise_index)
    sr_audio = sr_audio_input(audio, inputs.generator, settings.sr.audio_noise)
    video, _ = denoise(
        models["sr"], sr, (sr_video, sr_audio), (inputs.text, None), inputs.sr_image, guidance, step_done
    )
    return video, audio
