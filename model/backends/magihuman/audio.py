"""The audio path: how many audio tokens a clip has, and latents to a 44.1 kHz waveform.

The model's audio latents are stable-audio-open's Oobleck VAE latents (64 channels, one per
2048 samples) taken at 51.2 kHz, so one latent spans 1/25 s, one per video frame: a clip of s
seconds has s * 25 + 1 audio tokens and (s * 25) / 4 + 1 video latent frames. The VAE decodes
at 51.2 kHz; a Fourier resampling by 441/512 gives the 44.1 kHz track (the original uses
`scipy.signal.resample`, which this reproduces in torch).
"""

from __future__ import annotations

from typing import Any

import torch

from model.backends.magihuman.config import VAE_STRIDE, VIDEO_FPS

VAE_SAMPLE_RATE = 51200
OUTPUT_SAMPLE_RATE = 44100


def audio_tokens(seconds: int) -> int:
    """Audio latents (= audio tokens) of a clip of whole `seconds`."""
    return seconds * VIDEO_FPS + 1


def video_latent_frames(audio_token_count: int) -> int:
    """Video latent frames that go with `audio_token_count` audio tokens (the VAE packs 4 frames
    per latent frame after the first)."""
    return (audio_token_count - 1) // VAE_STRIDE[0] + 1


def fourier_resample(x: torch.Tensor, num: int) -> torch.Tensor:
    """Resample the last axis of real `x` to `num` samples by zero-padding or cutting its
    spectrum, as `scipy.signal.resample` does (the Nyquist bin split or joined the same way)."""
    length = x.shape[-1]
    spectrum = torch.fft.rfft(x.to(torch.float64), dim=-1)
    kept = min(num, length)
    out = spectrum.new_zeros(*x.shape[:-1], num // 2 + 1)
    out[..., : kept // 2 + 1] = spectrum[..., : kept // 2 + 1]
    if kept % 2 == 0 and num != length:
        # The bin at kept/2 is a Nyquist bin on the shorter side: its energy is shared between
        # +f and -f on the longer side.
        out[..., kept // 2] *= 2.0 if num < length else 0.5
    return (torch.fft.irfft(out, n=num, dim=-1) * (num / length)).to(x.dtype)


def decode_audio(audio_vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Audio latents [batch, tokens, 64] -> stereo waveforms [batch, 2, samples] at 44.1 kHz,
    float32 in [-1, 1]."""
    vae_dtype = next(audio_vae.parameters()).dtype
    with torch.inference_mode():
        waves = audio_vae.decode(latents.transpose(1, 2).to(vae_dtype)).sample.to(torch.float32)
    samples = waves.shape[-1] * OUTPUT_SAMPLE_RATE // VAE_SAMPLE_RATE
    return fourier_resample(waves, samples).clamp(-1.0, 1.0)
