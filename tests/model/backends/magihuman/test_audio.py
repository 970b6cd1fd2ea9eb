"""The audio path: token counts and the 51.2 -> 44.1 kHz Fourier resampling."""

from __future__ import annotations

import math

import pytest
import torch

from model.backends.magihuman.audio import (
    OUTPUT_SAMPLE_RATE,
    VAE_SAMPLE_RATE,
    audio_tokens,
    fourier_resample,
    video_latent_frames,
)


def test_a_five_second_clip_has_126_audio_tokens_and_32_latent_frames() -> None:
    assert audio_tokens(5) == 126
    assert video_latent_frames(audio_tokens(5)) == 32
    assert video_latent_frames(audio_tokens(1)) == 7


def tones(length: int, cycles: list[int], shift: float = 0.3) -> torch.Tensor:
    """Sinusoids with whole `cycles` over the window, sampled at `length` points (periodic)."""
    t = torch.arange(length, dtype=torch.float64) / length
    return sum(torch.cos(2 * math.pi * k * t + shift * k) for k in cycles)  # type: ignore[return-value]


@pytest.mark.parametrize(("length", "num"), [(512, 441), (441, 512), (1000, 999), (96, 64)])
def test_band_limited_periodic_signals_resample_exactly(length: int, num: int) -> None:
    cycles = [1, 7, min(length, num) // 2 - 1]
    resampled = fourier_resample(tones(length, cycles)[None], num)[0]
    torch.testing.assert_close(resampled, tones(num, cycles), atol=1e-9, rtol=0)


def test_a_tone_keeps_its_pitch_from_51_2_to_44_1_khz() -> None:
    seconds, pitch = 0.5, 1000.0
    t = torch.arange(int(VAE_SAMPLE_RATE * seconds)) / VAE_SAMPLE_RATE
    stereo = torch.stack([torch.sin(2 * math.pi * pitch * t)] * 2)
    out = fourier_resample(stereo, stereo.shape[-1] * OUTPUT_SAMPLE_RATE // VAE_SAMPLE_RATE)
    assert out.shape == (2, int(OUTPUT_SAMPLE_RATE * seconds)) and out.dtype == stereo.dtype
    spectrum = torch.fft.rfft(out[0]).abs()
    assert float(spectrum.argmax()) / seconds == pytest.approx(pitch)
    assert float(out.abs().max()) == pytest.approx(1.0, abs=1e-3)
