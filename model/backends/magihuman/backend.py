"""`MagiHumanBackend`: text/image to video with sound on the daVinci-MagiHuman transformer
(registry `backend: magihuman`), batched across requests.

Every running job of a stage shares one transformer forward: each contributes its
`[video | audio | text]` rows to one packed sequence (and its unguided copy with the negative
prompt on the base DiT), whatever its size, prompt length or step; attention keeps samples
apart (`attention`). Batch keys therefore name the stage (base or SR: different transformers)
and leave the latent shape out; `max_batch_tokens` caps the rows of one forward. Each job keeps
its own sampler state and noise (`staged`). `_generate` is the plain one-job loop of the
original (`reference`). Settings: `settings`; Ulysses over a parallel group: `ulysses`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from model.backends.base import Backend
from model.backends.magihuman.audio import OUTPUT_SAMPLE_RATE, decode_audio
from model.backends.magihuman.components import (
    NEGATIVE_PROMPT,
    MagiHumanComponents,
    build_tiny_components,
    decode_video,
    encode_prompt,
    load_components,
    save_components,
)
from model.backends.magihuman.config import SR_1080P_LOCAL_ATTN_LAYERS
from model.backends.magihuman.entry import RunnerEntry, StageModel
from model.backends.magihuman.inputs import check_size, job_inputs
from model.backends.magihuman.packing import PackingConfig, SampleInput
from model.backends.magihuman.reference import reference_latents
from model.backends.magihuman.samplers import Guidance
from model.backends.magihuman.settings import MagiHumanSettings
from model.backends.magihuman.staged import (
    BASE,
    SR,
    MagiHumanState,
    Stage,
    StagedSampler,
    first_stage_sampler,
    pack,
    sr_stage_sampler,
)
from model.backends.stock import torch_dtype
from model.registry import ModelSpec, TaskFamily
from model.step import BatchKey, JobState, NativeClip, NativeJob

# The base and distilled DiTs read coordinates in style v2, the SR DiTs in v1.
BASE_PACKING = PackingConfig(coords_style="v2")
SR_PACKING = PackingConfig(coords_style="v1")


class MagiHumanBackend(Backend[StagedSampler]):
    """daVinci-MagiHuman t2v and i2v with sound; see the module docstring."""

    name: ClassVar[str] = "magihuman"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.T2V, TaskFamily.I2V})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.settings = MagiHumanSettings.of(spec)
        self.device = torch.device(spec.devices[0])
        self.components = self._load(spec)
        self.models = {BASE: StageModel.of(self.components.transformer, BASE_PACKING)}
        if self.settings.sr is not None:
            if self.components.sr_transformer is None:
                raise ValueError(f"model {spec.name!r}: options.sr needs an SR transformer")
            self.models[SR] = StageModel.of(self.components.sr_transformer, SR_PACKING)
        # The runner's modules, in a fixed order: a parallel group finds them on every rank.
        self.base_entry: RunnerEntry = self.models[BASE].entry
        self.sr_entry: RunnerEntry | None = self.models[SR].entry if SR in self.models else None
        # The base DiT's unguided half is conditioned on the released fixed negative prompt.
        self.negative = encode_prompt(self.components, NEGATIVE_PROMPT).to(self.device)

    def _load(self, spec: ModelSpec) -> MagiHumanComponents:
        sr = self.settings.sr
        if spec.checkpoint is None:
            return build_tiny_components(
                self.settings.tiny_seed,
                with_sr=sr is not None,
                sr_local_attention=sr is None or sr.local_attention,
            )
        local = SR_1080P_LOCAL_ATTN_LAYERS if sr is not None and sr.local_attention else None
        paths = self.settings.component_paths(spec.checkpoint)
        return load_components(
            paths, dtype=torch_dtype(spec.dtype), device=self.device, sr_local_attn_layers=local
        )

    @classmethod
    def save_tiny(cls, folder: str | Path, seed: int = 0) -> None:
        """Write the tiny model as a diffusers-style folder (`transformer/`, `vae/`, ...)."""
        save_components(build_tiny_components(seed), folder)

    def check(self, job: NativeJob) -> None:
        """The base checks, and a native size in whole tokens (multiples of 32)."""
        super().check(job)
        check_size(job)

    def guidance(self, job: NativeJob) -> Guidance:
        """The job's CFG scales on the base DiT: its own early video scale, the model's others."""
        return Guidance(
            job.guidance_scale, self.settings.late_guidance_scale, self.settings.audio_guidance_scale
        )

    # -- reference path ---------------------------------------------------------------------

    def _generate(self, job: NativeJob) -> NativeClip:
        started = time.perf_counter()
        with torch.inference_mode():
            inputs = job_inputs(self.components, self.settings, job, self.device, self.vae_lock)
            video, audio = reference_latents(self.models, self.settings, inputs, self.negative, job)
            clip = self._clips([job], video[None], audio[None])[0]
        clip.timings["pipeline_s"] = time.perf_counter() - started
        return clip

    # -- step API ---------------------------------------------------------------------------

    def prepare(self, job: NativeJob) -> JobState[StagedSampler]:
        """Encode the job (`job_inputs`) and lay out its stages: the base stage at the first
        stage's size, then the SR stage at the job's size when the model has one."""
        self.check(job)
        with torch.inference_mode():
            inputs = job_inputs(self.components, self.settings, job, self.device, self.vae_lock)
        guided = self.settings.guided
        text_rows = inputs.text.shape[0]
        base_sampler = first_stage_sampler(
            self.settings, job.num_inference_steps, inputs.generator, self.device
        )
        audio_tokens = inputs.audio.shape[0]
        stages = [
            self._stage(
                BASE, base_sampler, inputs.video_shape, audio_tokens, inputs.base_image, guided, text_rows
            )
        ]
        if self.settings.sr is not None and inputs.sr_grid is not None:
            channels, frames = inputs.video_shape[:2]
            shape = (channels, frames, *inputs.sr_grid)
            sr = sr_stage_sampler(self.settings.sr, self.device)
            stages.append(self._stage(SR, sr, shape, audio_tokens, inputs.sr_image, False, text_rows))
        sampler = StagedSampler(stages, inputs.generator, self.settings.sr)
        return MagiHumanState(
            job=job,
            backend_id=self.backend_id,
            latents=sampler.initial(inputs.video, inputs.audio),
            scheduler=sampler,
            timesteps=sampler.timesteps,
            prompt_embeds=inputs.text,
            negative_embeds=self.negative if guided else None,
            guidance_scale=job.guidance_scale,
            tokens=stages[0].tokens,
            extra=sampler,
        )

    def _stage(
        self,
        name: str,
        sampler: Any,
        shape: tuple[int, int, int, int],
        audio_tokens: int,
        image: torch.Tensor | None,
        guided: bool,
        text_rows: int,
    ) -> Stage:
        pt, ph, pw = self.models[name].packing.patch_size
        video_rows = (shape[1] // pt) * (shape[2] // ph) * (shape[3] // pw)
        rows = video_rows + audio_tokens + text_rows
        if guided:
            rows += video_rows + audio_tokens + self.negative.shape[0]
        return Stage(name, sampler, shape, audio_tokens, image, guided, rows)

    def batch_key(self, state: JobState[StagedSampler]) -> BatchKey:
        """Jobs of one stage share forwards whatever their sizes: the stage picks the
        transformer; the packed sequence takes any mix of shapes and guided or unguided jobs."""
        stage = state.extra.stage
        return BatchKey(self.backend_id, (), stage.guided, None, stage.name)

    def forward(self, states: list[JobState[StagedSampler]]) -> list[torch.Tensor]:
        """One packed forward: every job's conditional sample, then the unguided copies of the
        guided ones; each job's velocities guided by its own scales at its own timestep."""
        stage_name = states[0].extra.stage.name
        samples, unguided = [], []
        for state in states:
            video, audio = state.extra.split(state.latents)
            samples.append(SampleInput(video, audio, state.prompt_embeds))
            if state.extra.stage.guided:
                unguided.append(SampleInput(video, audio, state.negative_embeds))
        with torch.inference_mode():
            outputs = self.models[stage_name].predict(self.runner, samples + unguided)
        velocities = []
        copies = iter(outputs[len(states) :])
        for state, velocity in zip(states, outputs[: len(states)], strict=True):
            if state.extra.stage.guided:
                velocity = self.guidance(state.job).apply(state.extra.timestep, velocity, next(copies))
            velocities.append(pack(*velocity))
        return velocities

    def decode(self, states: list[JobState[StagedSampler]]) -> list[NativeClip]:
        """Video VAE and audio VAE, batched over jobs whose latents have the same shapes."""
        started = time.perf_counter()
        finished = [state.extra.result(state.latents) for state in states]
        groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
        for i, (video, audio) in enumerate(finished):
            groups.setdefault((tuple(video.shape), tuple(audio.shape)), []).append(i)
        clips: dict[int, NativeClip] = {}
        with torch.inference_mode():
            for rows in groups.values():
                videos = torch.stack([finished[i][0] for i in rows])
                audios = torch.stack([finished[i][1] for i in rows])
                made = self._clips([states[i].job for i in rows], videos, audios)
                clips.update(zip(rows, made, strict=True))
        seconds = (time.perf_counter() - started) / len(states)
        for clip in clips.values():
            clip.timings["decode_s"] = seconds
        return [clips[i] for i in range(len(states))]

    def _clips(self, jobs: list[NativeJob], videos: torch.Tensor, audios: torch.Tensor) -> list[NativeClip]:
        """Latents [B, 48, T, h, w] and [B, A, 64] -> one clip each: frames and 44.1 kHz sound."""
        with self.vae_lock:
            frames = decode_video(self.components.vae, videos).cpu().numpy()
        sound = decode_audio(self.components.audio_vae, audios).cpu().numpy()
        return [
            NativeClip(
                frames=np.ascontiguousarray(frames[i], dtype=np.float32),
                fps=job.fps,
                audio=np.ascontiguousarray(sound[i], dtype=np.float32),
                sample_rate=OUTPUT_SAMPLE_RATE,
                timings={},
            )
            for i, job in enumerate(jobs)
        ]
