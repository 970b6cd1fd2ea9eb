"""Finished LTX-2 jobs to frames and sound: the stock decode (video VAE, audio VAE, vocoder),
batched over jobs of one grid."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from model.backends.ltx2.inputs import LTX2Conditioning
from model.backends.ltx2.packing import packed_sampler
from model.backends.stock import frames_array
from model.step import JobState, NativeClip


def decode_jobs(
    pipe: Any, states: list[JobState[LTX2Conditioning]], options: dict[str, Any]
) -> list[NativeClip]:
    """Each job's frames and sound, in order. Jobs are decoded in groups of one grid (equal
    packed shapes can still hide different grids, e.g. 32x64 and 64x32)."""
    started = time.perf_counter()
    groups: dict[Any, list[int]] = {}
    for i, state in enumerate(states):
        groups.setdefault((state.extra.grid, state.extra.audio_frames), []).append(i)
    clips: dict[int, NativeClip] = {}
    with torch.inference_mode():
        for rows in groups.values():
            group = _decode_group(pipe, [states[i] for i in rows], options)
            clips.update(zip(rows, group, strict=True))
    seconds = (time.perf_counter() - started) / len(states)
    for clip in clips.values():
        clip.timings["decode_s"] = seconds
    return [clips[i] for i in range(len(states))]


def _decode_group(
    pipe: Any, states: list[JobState[LTX2Conditioning]], options: dict[str, Any]
) -> list[NativeClip]:
    grid = states[0].extra.grid
    split = [packed_sampler(s).split(s.latents) for s in states]
    video = torch.cat([v for v, _ in split])
    audio = torch.cat([a for _, a in split])
    p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    video = pipe._unpack_latents(video, grid.frames, grid.height, grid.width, p, pt)
    video = video.to(pipe.text_encoder.dtype)
    video, timestep = _decode_noise(pipe, video, states, options)
    video = pipe._denormalize_latents(
        video, pipe.vae.latents_mean, pipe.vae.latents_std, pipe.vae.config.scaling_factor
    )
    frames = pipe.vae.decode(video.to(pipe.vae.dtype), timestep, return_dict=False)[0]
    frames = pipe.video_processor.postprocess_video(frames, output_type="np")
    audio = pipe._denormalize_audio_latents(audio, pipe.audio_vae.latents_mean, pipe.audio_vae.latents_std)
    mel_bins = pipe.audio_vae.config.mel_bins // pipe.audio_vae_mel_compression_ratio
    audio = pipe._unpack_audio_latents(audio, states[0].extra.audio_frames, num_mel_bins=mel_bins)
    mel = pipe.audio_vae.decode(audio.to(pipe.audio_vae.dtype), return_dict=False)[0]
    sound = pipe.vocoder(mel).float().cpu().numpy()
    return [
        NativeClip(
            frames=frames_array(frames[i : i + 1]),
            fps=s.job.fps,
            audio=np.ascontiguousarray(sound[i], dtype=np.float32),
            sample_rate=int(pipe.vocoder.config.output_sampling_rate),
            timings={},
        )
        for i, s in enumerate(states)
    ]


def _decode_noise(
    pipe: Any, video: torch.Tensor, states: list[JobState[LTX2Conditioning]], options: dict[str, Any]
) -> tuple[torch.Tensor, Any]:
    """A timestep-conditioned VAE decodes slightly re-noised latents (stock `decode_timestep`,
    noise from each job's generator where the stock call left it); others get no timestep."""
    if not pipe.vae.config.timestep_conditioning:
        return video, None
    decode_t = float(options.get("decode_timestep", 0.0))
    scale = options.get("decode_noise_scale")
    scale = decode_t if scale is None else float(scale)
    like: dict[str, Any] = {"device": video.device, "dtype": video.dtype}
    shape = (1, *video.shape[1:])
    noise = torch.cat([randn_tensor(shape, generator=s.extra.generator, **like) for s in states])
    timestep = torch.full((len(states),), decode_t, **like)
    scales = torch.full((len(states), 1, 1, 1, 1), scale, **like)  # a tensor, as stock: same rounding
    return (1 - scales) * video + scales * noise, timestep
