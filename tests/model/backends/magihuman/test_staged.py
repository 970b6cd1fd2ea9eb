"""The engine's view of a MagiHuman job: one packed latent stepped through one or two stages."""

from __future__ import annotations

import pytest
import torch

from model.backends.magihuman.samplers import FlowUniPCSampler, sr_audio_input, sr_start_latent
from model.backends.magihuman.settings import SRSettings
from model.backends.magihuman.staged import BASE, SR, Stage, StagedSampler, pack

VIDEO, SR_VIDEO, AUDIO = (48, 3, 2, 2), (48, 3, 4, 4), 9


def stage(name: str, shape: tuple[int, int, int, int], steps: int, image: torch.Tensor | None) -> Stage:
    return Stage(name, FlowUniPCSampler(steps, step_audio=name == BASE), shape, AUDIO, image, False, 0)


def straight(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def test_packing_is_video_then_audio_and_splits_back() -> None:
    sampler = StagedSampler([stage(BASE, VIDEO, 2, None)], torch.Generator())
    video, audio = torch.randn(VIDEO), torch.randn(AUDIO, 64)
    packed = pack(video, audio)
    assert packed.shape == (1, 48 * 12 + AUDIO * 64)
    assert torch.equal(packed[0, :10], video.flatten()[:10])
    split = sampler.split(packed)
    assert torch.equal(split[0], video) and torch.equal(split[1], audio)


def test_steps_follow_the_stage_sampler_whatever_timestep_the_engine_passes() -> None:
    x0, noise = straight(VIDEO, 0)
    audio0, audio_noise = straight((AUDIO, 64), 1)
    sampler = StagedSampler([stage(BASE, VIDEO, 4, None)], torch.Generator())
    reference = FlowUniPCSampler(4)
    packed = pack(noise, audio_noise)
    video, audio = noise, audio_noise
    velocity = pack(noise - x0, audio_noise - audio0)
    for index in range(4):
        (packed,) = sampler.step(velocity, "ignored", packed)
        video, audio = reference.step(index, video, noise - x0, audio, audio_noise - audio0)
        assert torch.equal(packed, pack(video, audio))
    assert sampler.timesteps.tolist() == reference.timesteps.tolist()


def test_the_image_latent_stays_in_frame_zero() -> None:
    image = torch.full((48, 1, 2, 2), 3.0)
    sampler = StagedSampler([stage(BASE, VIDEO, 2, image)], torch.Generator())
    packed = sampler.initial(torch.zeros(VIDEO), torch.zeros(AUDIO, 64))
    assert sampler.split(packed)[0][:, 0].eq(3).all() and sampler.split(packed)[0][:, 1:].eq(0).all()
    (packed,) = sampler.step(torch.ones_like(packed), None, packed)
    video, _ = sampler.split(packed)
    assert video[:, 0].eq(3).all() and not video[:, 1].eq(3).all()


def test_the_last_base_step_starts_the_sr_stage_and_keeps_the_base_audio() -> None:
    sr = SRSettings(base_pixels=1024, steps=2)
    sr_image = torch.full((48, 1, 4, 4), 7.0)
    stages = [stage(BASE, VIDEO, 1, None), stage(SR, SR_VIDEO, 2, sr_image)]
    sampler = StagedSampler(stages, torch.Generator().manual_seed(3), sr)
    assert sampler.timesteps.shape == (3,)
    x0, noise = straight(VIDEO, 2)
    audio0 = torch.randn(AUDIO, 64)
    (packed,) = sampler.step(pack(noise - x0, torch.zeros(AUDIO, 64)), None, pack(noise, audio0))
    assert sampler.stage.name == SR and packed.shape == (1, 48 * 48 + AUDIO * 64)
    base_video, base_audio = FlowUniPCSampler(1).step(0, noise, noise - x0, audio0, torch.zeros(AUDIO, 64))
    replay = torch.Generator().manual_seed(3)
    expected = sr_start_latent(base_video, 4, 4, replay)
    expected[:, :1] = sr_image
    video, audio = sampler.split(packed)
    assert torch.equal(video, expected) and torch.equal(audio, sr_audio_input(base_audio, replay))
    for _ in range(2):
        (packed,) = sampler.step(torch.zeros_like(packed), None, packed)
    final_video, final_audio = sampler.result(packed)
    assert final_video.shape == SR_VIDEO and torch.equal(final_audio, base_audio)


def test_two_stages_need_the_sr_settings() -> None:
    with pytest.raises(ValueError, match="SR settings"):
        StagedSampler([stage(BASE, VIDEO, 1, None), stage(SR, SR_VIDEO, 1, None)], torch.Generator())
