"""LTX-2: one transformer that denoises video and audio latents together, so the MP4 gets sound.

Stock path: `LTX2Pipeline` (t2v) and `LTX2ImageToVideoPipeline` (i2v) sharing one set of modules.

Engine path (`prepare` / `forward` / `decode`): the same components and maths with the step loop
outside. LTX-2 carries two latents per job, video tokens [1, Sv, Dv] and audio tokens [1, Sa, Da],
each stepped by its own copy of the scheduler (as the stock pipeline does). The engine steps ONE
tensor per job, so `JobState.latents` is the *packed* form: both token grids flattened and
concatenated, `[1, Sv*Dv + Sa*Da]` (video first), and `forward` returns each job's guided velocity
packed the same way. `JobState.scheduler` is a `PackedScheduler` that splits a packed tensor,
steps each half with its own scheduler and packs the result again; for i2v it also keeps the
conditioned first-frame tokens fixed, as the stock pipeline steps only frames 1.. .

Guidance: CFG (separate video and audio scales), guidance rescale, spatio-temporal guidance (STG)
and modality-isolation guidance are all supported in the engine. CFG runs as one transformer call
([uncond of every job, cond of every job], per-sample timesteps); STG and modality isolation are
whole-batch switches of the transformer (perturbed blocks, cross-modal attention off), so each
adds one more batched call over the jobs' cond inputs. The video CFG scale is the job's; every
other knob comes from `spec.options` (`audio_guidance_scale`, `guidance_rescale`, `stg_scale` +
`stg_blocks`, `modality_scale`, their `audio_*` twins, `use_cross_timestep`). Jobs share a forward
when family, latent video grid, audio length and the guidance *switches* (which passes run) match;
their scales may differ.

Not supported: prompt enhancement, the LTX-2.5 `duration_head` (num_frames is always given), step
caches (`cache_modules` is empty), `noise_scale` re-noising, other samplers than the pipeline's own.

Frame rule: the LTX-2 VAE compresses time by `r` (8 for the real model), so clips have `r*k + 1`
frames; a job's `num_frames` is rounded to that grid (`options.frame_rule`: "up", the default, or
"down"; "up" falls back to "down" past `max_native_frames`). Sizes must be multiples of 32
(`size_multiple: 32` in the registry).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import PIL.Image
import torch
from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline
from diffusers.pipelines.ltx2 import pipeline_ltx2, pipeline_ltx2_image2video
from diffusers.utils.torch_utils import randn_tensor

from model.backends.base import (
    Backend,
    NativeClip,
    NativeJob,
    cpu_generator,
    frames_array,
    step_callback,
    torch_dtype,
)
from model.backends.tiny import build_ltx2_components
from model.engine.state import JobState
from model.registry import ModelSpec, TaskFamily

if TYPE_CHECKING:
    from collections.abc import Hashable

# What real LTX-2 is trained with; the tiny tokenizer says 64.
REAL_MAX_SEQUENCE_LENGTH = 1024


@dataclass(frozen=True)
class Guidance:
    """Every guidance knob of the LTX-2 pipelines, named as `__call__` names them, the audio values
    already resolved the way `LTX2Pipeline.__call__` resolves them (`audio_x or x`)."""

    guidance_scale: float
    audio_guidance_scale: float
    guidance_rescale: float
    audio_guidance_rescale: float
    stg_scale: float
    audio_stg_scale: float
    spatio_temporal_guidance_blocks: tuple[int, ...]
    modality_scale: float
    audio_modality_scale: float
    use_cross_timestep: bool

    @property
    def cfg(self) -> bool:
        return self.guidance_scale > 1.0 or self.audio_guidance_scale > 1.0

    @property
    def stg(self) -> bool:
        return self.stg_scale > 0.0 or self.audio_stg_scale > 0.0

    @property
    def modality(self) -> bool:
        return self.modality_scale > 1.0 or self.audio_modality_scale > 1.0

    @property
    def switches(self) -> tuple[Any, ...]:
        """What decides which transformer calls a step makes: jobs batch only when these match."""
        blocks = self.spatio_temporal_guidance_blocks if self.stg else ()
        return (self.cfg, self.stg, blocks, self.modality, self.use_cross_timestep)

    def scales(self, audio: bool) -> tuple[float, float, float, float]:
        """(cfg, stg, modality, rescale) of the video or the audio stream."""
        if audio:
            return (
                self.audio_guidance_scale,
                self.audio_stg_scale,
                self.audio_modality_scale,
                self.audio_guidance_rescale,
            )
        return (self.guidance_scale, self.stg_scale, self.modality_scale, self.guidance_rescale)

    def pipeline_kwargs(self) -> dict[str, Any]:
        """The same settings as `__call__` arguments."""
        blocks = list(self.spatio_temporal_guidance_blocks) or None
        return {**asdict(self), "spatio_temporal_guidance_blocks": blocks}


def guidance_for(options: dict[str, Any], job: NativeJob) -> Guidance:
    """The job's guidance: video CFG from the job, the rest from `options` (stock defaults except
    STG off, modality guidance off and no rescale, which cost extra forwards or need tuning)."""
    cfg = job.guidance_scale
    stg = float(options.get("stg_scale", 0.0))
    modality = float(options.get("modality_scale", 1.0))
    rescale = float(options.get("guidance_rescale", 0.0))
    guidance = Guidance(
        guidance_scale=cfg,
        audio_guidance_scale=float(options.get("audio_guidance_scale") or cfg),
        guidance_rescale=rescale,
        audio_guidance_rescale=float(options.get("audio_guidance_rescale") or rescale),
        stg_scale=stg,
        audio_stg_scale=float(options.get("audio_stg_scale") or stg),
        spatio_temporal_guidance_blocks=tuple(int(b) for b in options.get("stg_blocks", ())),
        modality_scale=modality,
        audio_modality_scale=float(options.get("audio_modality_scale") or modality),
        use_cross_timestep=bool(options.get("use_cross_timestep", True)),
    )
    if guidance.stg and not guidance.spatio_temporal_guidance_blocks:
        raise ValueError("LTX-2 STG needs options.stg_blocks (e.g. [29] for LTX-2.0, [28] for LTX-2.3)")
    return guidance


@dataclass(frozen=True)
class Prompt:
    """One prompt after Gemma and the text connectors: video and audio context, attention mask."""

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor


def pack(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """[B, Sv, Dv] video and [B, Sa, Da] audio tokens -> [B, Sv*Dv + Sa*Da]."""
    return torch.cat([video.flatten(1), audio.flatten(1)], dim=1)


def unpack(
    packed: torch.Tensor, video_shape: tuple[int, int], audio_shape: tuple[int, int]
) -> tuple[Any, Any]:
    """The inverse of `pack`, given the (tokens, features) of each part."""
    split = video_shape[0] * video_shape[1]
    batch = packed.shape[0]
    return packed[:, :split].reshape(batch, *video_shape), packed[:, split:].reshape(batch, *audio_shape)


class PackedScheduler:
    """Steps a packed video+audio tensor: each part with its own scheduler instance.

    `keep` (i2v) marks video tokens that must not move (the encoded first frame): the stock i2v
    pipeline steps only the other frames; stepping all and restoring those is the same elementwise.
    """

    def __init__(
        self,
        video: Any,
        audio: Any,
        video_shape: tuple[int, int],
        audio_shape: tuple[int, int],
        keep: torch.Tensor | None = None,
    ) -> None:
        self.video, self.audio = video, audio
        self.video_shape, self.audio_shape = video_shape, audio_shape
        self.keep = keep

    @property
    def timesteps(self) -> torch.Tensor:
        return self.video.timesteps

    def split(self, packed: torch.Tensor) -> tuple[Any, Any]:
        return unpack(packed, self.video_shape, self.audio_shape)

    def step(
        self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, return_dict: bool = False
    ) -> tuple[torch.Tensor]:
        """One step of both schedulers on packed tensors; returns `(packed_prev_sample,)`."""
        del return_dict  # always a tuple, as the engine asks
        pred_video, pred_audio = self.split(model_output)
        video, audio = self.split(sample)
        new_video = self.video.step(pred_video, timestep, video, return_dict=False)[0]
        new_audio = self.audio.step(pred_audio, timestep, audio, return_dict=False)[0]
        if self.keep is not None:
            new_video = torch.where(self.keep[..., None], video, new_video)
        return (pack(new_video, new_audio),)


def load_pretrained(spec: ModelSpec) -> LTX2Pipeline:
    """`LTX2Pipeline.from_pretrained(spec.checkpoint)` from local files only, on `spec.devices[0]`."""
    if spec.checkpoint is None:
        raise ValueError(f"model {spec.name!r} has no checkpoint folder")
    pipe = LTX2Pipeline.from_pretrained(
        Path(spec.checkpoint), dtype=torch_dtype(spec.dtype), local_files_only=True
    )
    return pipe.to(spec.devices[0])


class LTX2Backend(Backend):
    """LTX-2 text/image to video with sound (registry `backend: ltx2`), see the module docstring."""

    name: ClassVar[str] = "ltx2"
    families: ClassVar[frozenset[TaskFamily]] = frozenset({TaskFamily.T2V, TaskFamily.I2V})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.checkpoint is None:
            t2v = LTX2Pipeline(**build_ltx2_components(int(spec.options.get("tiny_seed", 0))))
            t2v.to(spec.devices[0])
        else:
            t2v = load_pretrained(spec)
        self.t2v = t2v
        # same module objects, second pipeline class: no extra memory
        self.i2v = LTX2ImageToVideoPipeline(**t2v.components)
        for pipe in (self.t2v, self.i2v):
            pipe.set_progress_bar_config(disable=True)

    # -- shared settings ------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return int(self.t2v.vocoder.config.output_sampling_rate)

    def num_frames(self, job: NativeJob) -> int:
        """`job.num_frames` on the VAE's `r*k + 1` grid (see the module docstring)."""
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
                if job.image is None:
                    raise ValueError("i2v needs a first frame")
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

    def prepare(self, job: NativeJob) -> JobState:
        """Steps 3-6 of the stock `__call__`: prompt through Gemma and the connectors, video and
        audio noise drawn from the job's seed in the stock order, both schedulers, RoPE coords."""
        if job.family not in self.families:
            raise ValueError(f"backend {self.name!r} does not serve {job.family.value}")
        pipe = self.i2v if job.family is TaskFamily.I2V else self.t2v
        kwargs = self._call_kwargs(job)
        guidance = guidance_for(self.spec.options, job)
        with torch.inference_mode():
            cond, uncond = self._encode_prompt(pipe, kwargs, guidance.cfg)
            latents, keep = self._video_latents(pipe, job, kwargs)
            grid = _VideoGrid.of(pipe, kwargs)
            audio = _audio_latents(pipe, kwargs)
            scheduler = self._scheduler(pipe, latents, audio, job.num_inference_steps, keep)
            fps = pipeline_ltx2.get_conditioning_frame_rate(kwargs["frame_rate"], kwargs["motion_speed"])
            device = latents.device
            extras = {
                "guidance": guidance,
                "grid": grid,
                "audio_frames": audio.shape[1],
                "keep": keep,
                "generator": kwargs["generator"],
                "video_coords": pipe.transformer.rope.prepare_video_coords(
                    1, grid.frames, grid.height, grid.width, device, fps=fps
                ),
                "audio_coords": pipe.transformer.audio_rope.prepare_audio_coords(1, audio.shape[1], device),
            }
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
            extras=extras,
        )

    def _encode_prompt(self, pipe: Any, kwargs: dict[str, Any], cfg: bool) -> tuple[Prompt, Prompt | None]:
        """Gemma over [negative, prompt] and the connectors over both at once, as the stock call."""
        embeds, mask, neg_embeds, neg_mask = pipe.encode_prompt(
            prompt=kwargs["prompt"],
            negative_prompt=kwargs["negative_prompt"],
            do_classifier_free_guidance=cfg,
            max_sequence_length=kwargs["max_sequence_length"],
            device=pipe._execution_device,
        )
        if cfg:
            embeds, mask = torch.cat([neg_embeds, embeds]), torch.cat([neg_mask, mask])
        padding_side = getattr(pipe.tokenizer, "padding_side", "left")
        video, audio, mask = pipe.connectors(embeds, mask, padding_side=padding_side)
        if not cfg:
            return Prompt(video, audio, mask), None
        return Prompt(video[1:], audio[1:], mask[1:]), Prompt(video[:1], audio[:1], mask[:1])

    def _video_latents(
        self, pipe: Any, job: NativeJob, kwargs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Packed video noise [1, Sv, Dv]; for i2v with the encoded image in frame 0, and the
        boolean mask of those frame-0 tokens."""
        device = pipe._execution_device
        size = (kwargs["height"], kwargs["width"], kwargs["num_frames"])
        channels = pipe.transformer.config.in_channels
        generator = kwargs["generator"]
        if job.family is not TaskFamily.I2V:
            return pipe.prepare_latents(1, channels, *size, 0.0, torch.float32, device, generator, None), None
        if job.image is None:
            raise ValueError("i2v needs a first frame")
        image = job.image
        crf = self.spec.options.get("image_crf")
        if crf is None:
            crf = pipeline_ltx2_image2video.resolve_default_image_crf(pipe.text_encoder)
        if crf != 0:
            rgb = np.array(image.convert("RGB"))
            image = PIL.Image.fromarray(pipeline_ltx2_image2video.apply_image_conditioning_crf(rgb, crf))
        pixels = pipe.video_processor.preprocess(image, height=size[0], width=size[1])
        pixels = pixels.to(device=device, dtype=pipe.text_encoder.dtype)
        latents, mask = pipe.prepare_latents(
            pixels, 1, channels, *size, 0.0, torch.float32, device, generator, None
        )
        return latents, mask > 0

    @staticmethod
    def _scheduler(
        pipe: Any, video: torch.Tensor, audio: torch.Tensor, steps: int, keep: torch.Tensor | None
    ) -> PackedScheduler:
        """Two copies of the pipeline's scheduler with the stock sigmas and resolution shift."""
        config = pipe.scheduler.config
        sigmas = np.linspace(1.0, 1 / steps, steps)
        mu = pipeline_ltx2.calculate_shift(
            video.shape[1],
            config.get("base_image_seq_len", 1024),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.95),
            config.get("max_shift", 2.05),
        )
        parts = []
        for _ in range(2):
            # a fresh instance, not a deepcopy: the stock path may be mutating pipe.scheduler
            scheduler = type(pipe.scheduler).from_config(config)
            pipeline_ltx2.retrieve_timesteps(scheduler, steps, video.device, None, sigmas=sigmas, mu=mu)
            scheduler.set_begin_index(0)
            parts.append(scheduler)
        return PackedScheduler(parts[0], parts[1], tuple(video.shape[1:]), tuple(audio.shape[1:]), keep)

    def batch_key(self, state: JobState) -> Hashable:
        """Same family (i2v feeds per-token video timesteps), video grid, audio length and
        guidance switches (which extra forwards run); the guidance scales may differ."""
        extras = state.extras
        return state.batch_key(
            state.job.family, extras["grid"], extras["audio_frames"], extras["guidance"].switches
        )

    def forward(self, states: list[JobState]) -> list[Any]:
        """One batched transformer call for CFG ([uncond..., cond...]), one more each for STG and
        modality isolation when enabled; then each job's guidance, exactly as the stock loop."""
        guidance: Guidance = states[0].extras["guidance"]
        with torch.inference_mode():
            batch = _Batch.of(states, self.t2v.text_encoder.dtype)
            cond = [s.prompt_embeds for s in states]
            if guidance.cfg:
                both = self._run(batch.twice(), [s.negative_embeds for s in states] + cond)
                # (video, audio) of [uncond rows, cond rows] -> (uncond video, audio), (cond video, audio)
                uncond, main = zip(*(out.chunk(2) for out in both), strict=True)
            else:
                uncond, main = None, self._run(batch, cond)
            blocks = guidance.spatio_temporal_guidance_blocks
            stg = self._run(batch, cond, stg_blocks=blocks) if guidance.stg else None
            modality = self._run(batch, cond, isolate=True) if guidance.modality else None
            return [self._guide(state, i, main, uncond, stg, modality) for i, state in enumerate(states)]

    def _run(
        self,
        batch: _Batch,
        prompts: list[Prompt],
        *,
        stg_blocks: tuple[int, ...] = (),
        isolate: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
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
        state: JobState,
        i: int,
        main: tuple[torch.Tensor, torch.Tensor],
        uncond: tuple[torch.Tensor, torch.Tensor] | None,
        stg: tuple[torch.Tensor, torch.Tensor] | None,
        modality: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> torch.Tensor:
        """Combine job `i`'s predictions in x0 space with the stock formulas; packed velocity.

        `main`, `uncond`, `stg`, `modality` are the batched (video, audio) outputs of each pass.
        """
        g: Guidance = state.extras["guidance"]
        scheduler: PackedScheduler = state.scheduler
        samples = scheduler.split(state.latents)
        modes = ((scheduler.video, g.scales(audio=False)), (scheduler.audio, g.scales(audio=True)))
        parts = []
        for m, (sched, scales) in enumerate(modes):
            sample = samples[m]
            x0 = [
                None
                if out is None
                else self.t2v.convert_velocity_to_x0(sample, out[m][i : i + 1], state.step, sched)
                for out in (main, uncond, stg, modality)
            ]
            guided = _combine(*x0, scales)
            parts.append(self.t2v.convert_x0_to_velocity(sample, guided, state.step, sched))
        return pack(*parts)

    def decode(self, states: list[JobState]) -> list[NativeClip]:
        """The stock decode (video VAE, audio VAE, vocoder), batched over jobs of one grid (equal
        packed shapes can still hide different grids, e.g. 32x64 and 64x32, hence the regrouping)."""
        started = time.perf_counter()
        groups: dict[Any, list[int]] = {}
        for i, state in enumerate(states):
            groups.setdefault((state.extras["grid"], state.extras["audio_frames"]), []).append(i)
        clips: dict[int, NativeClip] = {}
        with torch.inference_mode():
            for rows in groups.values():
                clips.update(zip(rows, self._decode_group([states[i] for i in rows]), strict=True))
        seconds = (time.perf_counter() - started) / len(states)
        for clip in clips.values():
            clip.timings["decode_s"] = seconds
        return [clips[i] for i in range(len(states))]

    def _decode_group(self, states: list[JobState]) -> list[NativeClip]:
        pipe = self.t2v
        grid: _VideoGrid = states[0].extras["grid"]
        split = [s.scheduler.split(s.latents) for s in states]
        video = torch.cat([v for v, _ in split])
        audio = torch.cat([a for _, a in split])
        p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
        video = pipe._unpack_latents(video, grid.frames, grid.height, grid.width, p, pt)
        video = video.to(pipe.text_encoder.dtype)
        video, timestep = self._decode_noise(video, states)
        video = pipe._denormalize_latents(
            video, pipe.vae.latents_mean, pipe.vae.latents_std, pipe.vae.config.scaling_factor
        )
        frames = pipe.vae.decode(video.to(pipe.vae.dtype), timestep, return_dict=False)[0]
        frames = pipe.video_processor.postprocess_video(frames, output_type="np")
        audio = pipe._denormalize_audio_latents(
            audio, pipe.audio_vae.latents_mean, pipe.audio_vae.latents_std
        )
        mel_bins = pipe.audio_vae.config.mel_bins // pipe.audio_vae_mel_compression_ratio
        audio = pipe._unpack_audio_latents(audio, states[0].extras["audio_frames"], num_mel_bins=mel_bins)
        mel = pipe.audio_vae.decode(audio.to(pipe.audio_vae.dtype), return_dict=False)[0]
        sound = pipe.vocoder(mel).float().cpu().numpy()
        return [
            NativeClip(
                frames=frames_array(frames[i : i + 1]),
                fps=s.job.fps,
                audio=np.ascontiguousarray(sound[i], dtype=np.float32),
                sample_rate=self.sample_rate,
                timings={},
            )
            for i, s in enumerate(states)
        ]

    def _decode_noise(self, video: torch.Tensor, states: list[JobState]) -> tuple[torch.Tensor, Any]:
        """A timestep-conditioned VAE decodes slightly re-noised latents (stock `decode_timestep`,
        noise from each job's generator where the stock call left it); others get no timestep."""
        if not self.t2v.vae.config.timestep_conditioning:
            return video, None
        options = self.spec.options
        decode_t = float(options.get("decode_timestep", 0.0))
        scale = options.get("decode_noise_scale")
        scale = decode_t if scale is None else float(scale)
        like = {"device": video.device, "dtype": video.dtype}
        shape = (1, *video.shape[1:])
        noise = torch.cat([randn_tensor(shape, generator=s.extras["generator"], **like) for s in states])
        timestep = torch.full((len(states),), decode_t, **like)
        scales = torch.full((len(states), 1, 1, 1, 1), scale, **like)  # a tensor, as stock: same rounding
        return (1 - scales) * video + scales * noise, timestep


@dataclass(frozen=True)
class _VideoGrid:
    """Latent video frames, height and width of a job (hashable: part of the batch key)."""

    frames: int
    height: int
    width: int

    @classmethod
    def of(cls, pipe: Any, kwargs: dict[str, Any]) -> _VideoGrid:
        return cls(
            (kwargs["num_frames"] - 1) // pipe.vae_temporal_compression_ratio + 1,
            kwargs["height"] // pipe.vae_spatial_compression_ratio,
            kwargs["width"] // pipe.vae_spatial_compression_ratio,
        )


def _audio_latents(pipe: Any, kwargs: dict[str, Any]) -> torch.Tensor:
    """Packed audio noise [1, Sa, Da] for the clip's duration, drawn after the video noise."""
    duration = kwargs["num_frames"] / kwargs["frame_rate"]
    per_second = (
        pipe.audio_sampling_rate / pipe.audio_hop_length / float(pipe.audio_vae_temporal_compression_ratio)
    )
    length, config = round(duration * per_second), pipe.audio_vae.config
    return pipe.prepare_audio_latents(
        1, config.latent_channels, length, config.mel_bins, 0.0, torch.float32, pipe._execution_device,
        kwargs["generator"], None,
    )  # fmt: skip


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
    def of(cls, states: list[JobState], dtype: torch.dtype) -> _Batch:
        split = [s.scheduler.split(s.latents) for s in states]
        timestep = torch.stack([s.timestep for s in states])
        keeps = [s.extras["keep"] for s in states]
        video_timestep = timestep
        if keeps[0] is not None:
            video_timestep = torch.cat(
                [s.timestep * (1 - k.float()) for s, k in zip(states, keeps, strict=True)]
            )
        return cls(
            video=torch.cat([v for v, _ in split]).to(dtype),
            audio=torch.cat([a for _, a in split]).to(dtype),
            timestep=timestep,
            video_timestep=video_timestep,
            video_coords=torch.cat([s.extras["video_coords"] for s in states]),
            audio_coords=torch.cat([s.extras["audio_coords"] for s in states]),
            use_cross_timestep=states[0].extras["guidance"].use_cross_timestep,
        )

    def twice(self) -> _Batch:
        """Every row repeated after itself as a block: [rows, rows] (uncond half, cond half)."""
        tensors = {k: torch.cat([v, v]) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return replace(self, **tensors)


def _combine(
    cond: torch.Tensor | None,
    uncond: torch.Tensor | None,
    stg: torch.Tensor | None,
    modality: torch.Tensor | None,
    scales: tuple[float, float, float, float],
) -> torch.Tensor:
    """The stock guidance in x0 space, term for term and in the same order (delta form);
    `scales` is (cfg, stg, modality, rescale)."""
    assert cond is not None
    cfg_scale, stg_scale, modality_scale, rescale = scales
    cfg_delta: Any = 0 if uncond is None else (cfg_scale - 1) * (cond - uncond)
    stg_delta: Any = 0 if stg is None else stg_scale * (cond - stg)
    modality_delta: Any = 0 if modality is None else (modality_scale - 1) * (cond - modality)
    guided = cond + cfg_delta + stg_delta + modality_delta
    if rescale > 0:
        return pipeline_ltx2.rescale_noise_cfg(guided, cond, guidance_rescale=rescale)
    return guided
