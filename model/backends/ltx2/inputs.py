"""What an LTX-2 job becomes at admission, as the stock `__call__` makes it: the prompt through
Gemma and the connectors, the video noise (with the encoded first frame for i2v), the audio
noise, and the latent video grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.pipelines.ltx2 import pipeline_ltx2_image2video

from model.backends.ltx2.guidance import Guidance
from model.registry import TaskFamily
from model.step import NativeJob


@dataclass(frozen=True)
class Prompt:
    """One prompt after Gemma and the text connectors: video and audio context, attention mask."""

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class VideoGrid:
    """Latent video frames, height and width of a job (hashable: part of the batch key)."""

    frames: int
    height: int
    width: int

    @classmethod
    def of(cls, pipe: Any, kwargs: dict[str, Any]) -> VideoGrid:
        return cls(
            (kwargs["num_frames"] - 1) // pipe.vae_temporal_compression_ratio + 1,
            kwargs["height"] // pipe.vae_spatial_compression_ratio,
            kwargs["width"] // pipe.vae_spatial_compression_ratio,
        )


@dataclass(frozen=True)
class LTX2Conditioning:
    """An LTX-2 job's state besides its packed latents and its prompts (`JobState.extra`)."""

    guidance: Guidance
    grid: VideoGrid
    audio_frames: int  # audio latent tokens
    keep: torch.Tensor | None  # i2v: the video tokens of the encoded first frame, never stepped
    generator: torch.Generator  # the job's noise source; the decode's re-noising draws from it
    video_coords: torch.Tensor
    audio_coords: torch.Tensor


def encode_prompt(pipe: Any, kwargs: dict[str, Any], cfg: bool) -> tuple[Prompt, Prompt | None]:
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


def video_latents(
    pipe: Any, job: NativeJob, kwargs: dict[str, Any], image_crf: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Packed video noise [1, Sv, Dv]; for i2v with the encoded image in frame 0 (compressed
    first with `image_crf`, default the pipeline's), and the boolean mask of those frame-0 tokens."""
    device = pipe._execution_device
    size = (kwargs["height"], kwargs["width"], kwargs["num_frames"])
    channels = pipe.transformer.config.in_channels
    generator = kwargs["generator"]
    if job.family is not TaskFamily.I2V:
        return pipe.prepare_latents(1, channels, *size, 0.0, torch.float32, device, generator, None), None
    if job.image is None:
        raise ValueError("i2v needs a first frame")
    image = job.image
    crf = image_crf
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


def audio_latents(pipe: Any, kwargs: dict[str, Any]) -> torch.Tensor:
    """Packed audio noise [1, Sa, Da] for the clip's duration, drawn after the video noise."""
    duration = kwargs["num_frames"] / kwargs["frame_rate"]
    per_second = (
        pipe.audio_sampling_rate / pipe.audio_hop_length / float(pipe.audio_vae_temporal_compression_ratio)
    )
    length, config = round(duration * per_second), pipe.audio_vae.config
    latents: torch.Tensor = pipe.prepare_audio_latents(
        1, config.latent_channels, length, config.mel_bins, 0.0, torch.float32, pipe._execution_device,
        kwargs["generator"], None,
    )  # fmt: skip
    return latents
