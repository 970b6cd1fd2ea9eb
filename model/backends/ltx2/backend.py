"""`LTX2Backend`: LTX-2 text/image to video with sound (registry `backend: ltx2`); the package
docstring says how the engine path carries two latents per job and what guidance it supports."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline
from diffusers.pipelines.ltx2 import pipeline_ltx2

from model.backends.base import Backend
from model.backends.ltx2.decode import decode_jobs
from model.backends.ltx2.guidance import Guidance, combine, guidance_for
from model.backends.ltx2.inputs import (
    LTX2Conditioning,
    Prompt,
    VideoGrid,
    audio_latents,
    encode_prompt,
    video_latents,
)
from model.backends.ltx2.packing import pack, packed_sampler, packed_scheduler
from model.backends.ltx2.tiny import build_ltx2_components
from model.backends.stock import cpu_generator, frames_array, step_callback, torch_dtype
from model.registry import ModelSpec, TaskFamily
from model.step import BatchKey, JobState, NativeClip, NativeJob

# What real LTX-2 is trained with; the tiny tokenizer says 64.
REAL_MAX_SEQUENCE_LENGTH = 1024
# (video, audio) outputs of one batched transformer pass
Outputs = tuple[torch.Tensor, torch.Tensor]


class LTX2Backend(Backend[LTX2Conditioning]):
    """LTX-2 text/image to video with sound, see the package docstring."""

    name: ClassVar[str] = "ltx2"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.T2V, TaskFamily.I2V})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.checkpoint is None:
            t2v = LTX2Pipeline(**build_ltx2_components(int(spec.options.get("tiny_seed", 0))))
        else:
            t2v = LTX2Pipeline.from_pretrained(
                Path(spec.checkpoint), dtype=torch_dtype(spec.dtype), local_files_only=True
            )
        self.t2v: Any = t2v.to(spec.devices[0])
        # same module objects, second pipeline class: no extra memory
        self.i2v: Any = LTX2ImageToVideoPipeline(**self.t2v.components)
        for pipe in (self.t2v, self.i2v):
            pipe.set_progress_bar_config(disable=True)

    # -- shared settings ------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return int(self.t2v.vocoder.config.output_sampling_rate)

    def num_frames(self, job: NativeJob) -> int:
        """`job.num_frames` on the VAE's `r*k + 1` grid (see the package docstring)."""
        ratio = int(self.t2v.vae_temporal_compression_ratio)
        k = (max(1, job.num_frames) - 1) / ratio
        down = math.floor(k) * ratio + 1
        up = math.ceil(k) * ratio + 1
        if self.spec.options.get("frame_rule", "up") == "down" or up > self.spec.max_native_frames:
            return down
        return up

    def max_sequence_length(self) -> int:
        """Text tokens per prompt: `options.max_sequence_length`, else the tokenizer's limit capped
        at the 1024 LTX-2 is trained with."""
        if "max_sequence_length" in self.spec.options:
            return int(self.spec.options["max_sequence_length"])
        return min(REAL_MAX_SEQUENCE_LENGTH, int(self.t2v.tokenizer.model_max_length))

    def _call_kwargs(self, job: NativeJob) -> dict[str, Any]:
        options = self.spec.options
        return {
            "prompt": job.prompt,
            "negative_prompt": str(options.get("negative_prompt", "")),
            "height": job.height,
            "width": job.width,
            "num_frames": self.num_frames(job),
            "frame_rate": float(job.fps),
            "motion_speed": float(options.get("motion_speed", 1.0)),
            "num_inference_steps": job.num_inference_steps,
            "decode_timestep": float(options.get("decode_timestep", 0.0)),
            "decode_noise_scale": options.get("decode_noise_scale"),
            "max_sequence_length": self.max_sequence_length(),
            "generator": cpu_generator(job.seed),
            "output_type": "np",
            "callback_on_step_end": step_callback(job.progress, job.num_inference_steps),
            **guidance_for(options, job).pipeline_kwargs(),
        }

    # -- stock path -----------------------------------------------------------------------------

    def _generate(self, job: NativeJob) -> NativeClip:
        started = time.perf_counter()
        kwargs = self._call_kwargs(job)
        with torch.inference_mode():
            if job.family is TaskFamily.I2V:
                out = self.i2v(image=job.image, image_crf=self.spec.options.get("image_crf"), **kwargs)
            else:
                out = self.t2v(**kwargs)
        audio = out.audio[0].float().cpu().numpy()
        return NativeClip(
            frames=frames_array(out.frames),
            fps=job.fps,
            audio=np.ascontiguousarray(audio, dtype=np.float32),
            sample_rate=self.sample_rate,
            timings={"pipeline_s": time.perf_counter() - started},
        )

    @classmethod
    def save_tiny(cls, folder: str | Path, seed: int = 0) -> None:
        """Write the tiny model as an `LTX2Pipeline` folder (the layout of Lightricks/LTX-2)."""
        LTX2Pipeline(**build_ltx2_components(seed)).save_pretrained(str(folder))

    # -- step API -------------------------------------------------------------------------------

    def prepare(self, job: NativeJob) -> JobState[LTX2Conditioning]:
        """Steps 3-6 of the stock `__call__`: prompt through Gemma and the connectors, video and
        audio noise drawn from the job's seed in the stock order, both schedulers, RoPE coords."""
        self.check(job)
        pipe = self.i2v if job.family is TaskFamily.I2V else self.t2v
        kwargs = self._call_kwargs(job)
        guidance = guidance_for(self.spec.options, job)
        with torch.inference_mode():
            cond, uncond = encode_prompt(pipe, kwargs, guidance.cfg)
            with self.vae_lock:  # i2v encodes the first frame with the VAE
                latents, keep = video_latents(pipe, job, kwargs, self.spec.options.get("image_crf"))
            grid = VideoGrid.of(pipe, kwargs)
            audio = audio_latents(pipe, kwargs)
            scheduler = packed_scheduler(pipe, latents, audio, job.num_inference_steps, keep)
            fps = pipeline_ltx2.get_conditioning_frame_rate(kwargs["frame_rate"], kwargs["motion_speed"])
            device = latents.device
            extra = LTX2Conditioning(
                guidance=guidance,
                grid=grid,
                audio_frames=audio.shape[1],
                keep=keep,
                generator=kwargs["generator"],
                video_coords=pipe.transformer.rope.prepare_video_coords(
                    1, grid.frames, grid.height, grid.width, device, fps=fps
                ),
                audio_coords=pipe.transformer.audio_rope.prepare_audio_coords(1, audio.shape[1], device),
            )
        return JobState(
            job=job,
            backend_id=self.backend_id,
            latents=pack(latents, audio),
            scheduler=scheduler,
            timesteps=scheduler.timesteps,
            prompt_embeds=cond,
            negative_embeds=uncond,
            guidance_scale=guidance.guidance_scale,
            tokens=int(latents.shape[1] + audio.shape[1]),
            extra=extra,
        )

    def batch_key(self, state: JobState[LTX2Conditioning]) -> BatchKey:
        """Same family (i2v feeds per-token video timesteps), video grid, audio length and
        guidance switches (which extra forwards run); the guidance scales may differ."""
        extra = state.extra
        return state.batch_key((state.job.family, extra.grid, extra.audio_frames, extra.guidance.switches))

    def forward(self, states: list[JobState[LTX2Conditioning]]) -> list[torch.Tensor]:
        """One batched transformer call for CFG ([uncond..., cond...]), one more each for STG and
        modality isolation when enabled; then each job's guidance, exactly as the stock loop."""
        guidance = states[0].extra.guidance
        with torch.inference_mode():
            batch = _Batch.of(states, self.t2v.text_encoder.dtype)
            cond: list[Prompt] = [s.prompt_embeds for s in states]
            uncond: Outputs | None = None
            if guidance.cfg:
                both = self._run(batch.twice(), [s.negative_embeds for s in states] + cond)
                # (video, audio) of [uncond rows, cond rows] -> (uncond video, audio), (cond video, audio)
                (uncond_video, main_video), (uncond_audio, main_audio) = (out.chunk(2) for out in both)
                uncond, main = (uncond_video, uncond_audio), (main_video, main_audio)
            else:
                main = self._run(batch, cond)
            blocks = guidance.spatio_temporal_guidance_blocks
            stg = self._run(batch, cond, stg_blocks=blocks) if guidance.stg else None
            modality = self._run(batch, cond, isolate=True) if guidance.modality else None
            return [self._guide(state, i, main, uncond, stg, modality) for i, state in enumerate(states)]

    def _run(
        self, batch: _Batch, prompts: list[Prompt], *, stg_blocks: tuple[int, ...] = (), isolate: bool = False
    ) -> Outputs:
        """One transformer forward over `batch` with `prompts` (one per row); float32 outputs.
        (Grid sizes and fps are not passed: they only serve to build the coords, which are.)"""
        video, audio = self.t2v.transformer(
            hidden_states=batch.video,
            audio_hidden_states=batch.audio,
            encoder_hidden_states=torch.cat([p.video for p in prompts]),
            audio_encoder_hidden_states=torch.cat([p.audio for p in prompts]),
            timestep=batch.video_timestep,
            audio_timestep=batch.timestep,
            sigma=batch.timestep,
            encoder_attention_mask=torch.cat([p.mask for p in prompts]),
            audio_encoder_attention_mask=torch.cat([p.mask for p in prompts]),
            video_coords=batch.video_coords,
            audio_coords=batch.audio_coords,
            isolate_modalities=isolate,
            spatio_temporal_guidance_blocks=list(stg_blocks) or None,
            perturbation_mask=None,
            use_cross_timestep=batch.use_cross_timestep,
            attention_kwargs=None,
            return_dict=False,
        )
        return video.float(), audio.float()

    def _guide(
        self,
        state: JobState[LTX2Conditioning],
        i: int,
        main: Outputs,
        uncond: Outputs | None,
        stg: Outputs | None,
        modality: Outputs | None,
    ) -> torch.Tensor:
        """Combine job `i`'s predictions in x0 space with the stock formulas; packed velocity.

        `main`, `uncond`, `stg`, `modality` are the batched (video, audio) outputs of each pass.
        """
        g: Guidance = state.extra.guidance
        scheduler = packed_sampler(state)
        samples = scheduler.split(state.latents)
        modes = ((scheduler.video, g.scales(audio=False)), (scheduler.audio, g.scales(audio=True)))
        parts = []
        for m, (sched, scales) in enumerate(modes):
            sample = samples[m]
            cond_x0, uncond_x0, stg_x0, modality_x0 = [
                None
                if out is None
                else self.t2v.convert_velocity_to_x0(sample, out[m][i : i + 1], state.step, sched)
                for out in (main, uncond, stg, modality)
            ]
            guided = combine(cond_x0, uncond_x0, stg_x0, modality_x0, scales)
            parts.append(self.t2v.convert_x0_to_velocity(sample, guided, state.step, sched))
        return pack(*parts)

    def decode(self, states: list[JobState[LTX2Conditioning]]) -> list[NativeClip]:
        """The stock decode (video VAE, audio VAE, vocoder), see `decode_jobs`."""
        with self.vae_lock:
            return decode_jobs(self.t2v, states, self.spec.options)


@dataclass(frozen=True)
class _Batch:
    """The per-row transformer inputs of a group of jobs at their current steps."""

    video: torch.Tensor
    audio: torch.Tensor
    timestep: torch.Tensor  # [B]: audio timestep and sigma
    video_timestep: torch.Tensor  # [B] (t2v) or [B, Sv] (i2v: 0 on the kept first frame)
    video_coords: torch.Tensor
    audio_coords: torch.Tensor
    use_cross_timestep: bool

    @classmethod
    def of(cls, states: list[JobState[LTX2Conditioning]], dtype: torch.dtype) -> _Batch:
        split = [packed_sampler(s).split(s.latents) for s in states]
        timestep = torch.stack([s.timestep for s in states])
        video_timestep = timestep
        if states[0].extra.keep is not None:
            video_timestep = torch.cat([s.timestep * (1 - _kept(s).float()) for s in states])
        return cls(
            video=torch.cat([v for v, _ in split]).to(dtype),
            audio=torch.cat([a for _, a in split]).to(dtype),
            timestep=timestep,
            video_timestep=video_timestep,
            video_coords=torch.cat([s.extra.video_coords for s in states]),
            audio_coords=torch.cat([s.extra.audio_coords for s in states]),
            use_cross_timestep=states[0].extra.guidance.use_cross_timestep,
        )

    def twice(self) -> _Batch:
        """Every row repeated after itself as a block: [rows, rows] (uncond half, cond half)."""
        return replace(
            self,
            video=torch.cat([self.video, self.video]),
            audio=torch.cat([self.audio, self.audio]),
            timestep=torch.cat([self.timestep, self.timestep]),
            video_timestep=torch.cat([self.video_timestep, self.video_timestep]),
            video_coords=torch.cat([self.video_coords, self.video_coords]),
            audio_coords=torch.cat([self.audio_coords, self.audio_coords]),
        )


def _kept(state: JobState[LTX2Conditioning]) -> torch.Tensor:
    """The job's kept-first-frame token mask; jobs batch by family, so an i2v batch has one each."""
    keep = state.extra.keep
    if keep is None:
        raise ValueError("a t2v job in an i2v batch")
    return keep
