"""The samplers' schedules and step algebra, on flows whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import UniPCMultistepScheduler

from model.backends.magihuman.samplers import (
    BASE_STEPS,
    DistilledSampler,
    FlowUniPCSampler,
    ddim_step,
    guided,
    overwrite_first_frame,
    shifted_sigmas,
    sr_audio_input,
    sr_start_latent,
    video_guidance_scale,
    zero_snr_signal_levels,
)

# The distilled DiT's published schedule.
DISTILLED_SIGMAS = [0.9998, 0.972, 0.937, 0.893, 0.833, 0.750, 0.625, 0.416, 0.0]


def straight_flow(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A clean latent x0 and the noise n of one straight flow: x_σ = (1 - σ) x0 + σ n, v = n - x0."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(48, 2, 4, 4, generator=generator), torch.randn(48, 2, 4, 4, generator=generator)


def test_the_distilled_schedule_is_the_published_one() -> None:
    sampler = DistilledSampler(torch.Generator())
    assert sampler.num_steps == 8
    assert np.allclose(sampler.sigmas.numpy(), DISTILLED_SIGMAS, atol=5e-4)
    # 1000 σ truncated, as the original's scheduler has it (892.6 -> 892).
    assert sampler.timesteps.tolist() == [999, 972, 937, 892, 833, 749, 624, 416]


def test_a_ddim_step_predicts_x0_then_renoises_with_fresh_noise() -> None:
    x0, noise = straight_flow(0)
    sample = 0.25 * x0 + 0.75 * noise  # sigma 0.75
    stepped = ddim_step(sample, noise - x0, 0.75, 0.5, torch.Generator().manual_seed(5))
    fresh = torch.randn(x0.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(stepped, 0.5 * fresh + 0.5 * x0)


def test_the_distilled_sampler_lands_on_the_clean_latents_drawing_from_the_jobs_generator() -> None:
    x0, noise = straight_flow(1)
    audio0 = x0[0, 0] * 2

    def walk(seed: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        sampler = DistilledSampler(generator)
        sigma = float(sampler.sigmas[0])
        video, audio = sigma * noise + (1 - sigma) * x0, sigma * noise[0, 0] + (1 - sigma) * audio0
        trail = []
        for index in range(sampler.num_steps):
            sigma = float(sampler.sigmas[index])
            if index == sampler.num_steps - 1:
                state = generator.get_state()
            # The exact velocity of the straight path through the current sample.
            video, audio = sampler.step(index, video, (video - x0) / sigma, audio, (audio - audio0) / sigma)
            trail.append(video)
        assert torch.equal(generator.get_state(), state), "the last step draws no noise"
        torch.testing.assert_close(audio, audio0, atol=1e-5, rtol=0)
        return trail

    trail, replay, other = walk(3), walk(3), walk(4)
    torch.testing.assert_close(trail[-1], x0, atol=1e-5, rtol=0)
    assert all(torch.equal(a, b) for a, b in zip(trail, replay, strict=True))
    assert not torch.allclose(trail[3], other[3]) and torch.allclose(trail[-1], other[-1], atol=1e-5)


def test_unipc_runs_on_the_originals_grid_not_diffusers_default() -> None:
    sampler = FlowUniPCSampler(BASE_STEPS)
    assert sampler.num_steps == 32 and int(sampler.timesteps[0]) == 999
    torch.testing.assert_close(sampler.sigmas, shifted_sigmas(BASE_STEPS))
    stock = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    stock.set_timesteps(BASE_STEPS)
    assert not torch.allclose(stock.sigmas, sampler.sigmas, atol=1e-5)


def test_unipc_follows_a_straight_flow_to_its_clean_end() -> None:
    x0, noise = straight_flow(2)
    sampler = FlowUniPCSampler(BASE_STEPS)
    video = float(sampler.sigmas[0]) * noise + (1 - float(sampler.sigmas[0])) * x0
    audio = video[0, 0].clone()
    for index in range(sampler.num_steps):
        video, audio = sampler.step(index, video, noise - x0, audio, noise[0, 0] - x0[0, 0])
    torch.testing.assert_close(video, x0, atol=1e-4, rtol=0)
    torch.testing.assert_close(audio, x0[0, 0], atol=1e-4, rtol=0)


def test_unipc_refuses_steps_out_of_order() -> None:
    sampler = FlowUniPCSampler(4)
    x0, noise = straight_flow(3)
    sampler.step(0, noise, noise - x0, noise, noise - x0)
    with pytest.raises(ValueError, match="out of order"):
        sampler.step(2, noise, noise - x0, noise, noise - x0)


def test_the_sr_stage_leaves_audio_alone() -> None:
    sampler = FlowUniPCSampler(5, step_audio=False)
    x0, noise = straight_flow(4)
    _, audio = sampler.step(0, noise, noise - x0, x0[0], noise[0])
    assert torch.equal(audio, x0[0])


def test_video_guidance_is_strong_early_and_weak_late() -> None:
    assert video_guidance_scale(501) == 5.0 and video_guidance_scale(500) == 2.0
    strong = sum(video_guidance_scale(int(t)) == 5.0 for t in FlowUniPCSampler(BASE_STEPS).timesteps)
    assert 0 < strong < BASE_STEPS
    cond, uncond = torch.tensor([3.0]), torch.tensor([1.0])
    assert guided(cond, uncond, 5.0).item() == 11.0


def test_i2v_overwrites_latent_frame_zero() -> None:
    video, image = torch.zeros(48, 3, 2, 2), torch.ones(48, 1, 2, 2)
    overwrite_first_frame(video, image)
    assert video[:, 0].eq(1).all() and video[:, 1:].eq(0).all()


def test_zero_snr_levels_fall_from_almost_one_to_exactly_zero() -> None:
    levels = zero_snr_signal_levels()
    assert levels.shape == (1000,) and levels.dtype == torch.float32
    assert abs(float(levels[0]) - (1 - 0.00085) ** 0.5) < 1e-6 and float(levels[-1]) == 0.0
    assert (levels[1:] < levels[:-1]).all()


def test_the_sr_start_mixes_the_upsampled_base_with_noise_at_level_220() -> None:
    base = torch.full((48, 3, 2, 2), 0.5)
    start = sr_start_latent(base, 4, 4, torch.Generator().manual_seed(9))
    assert start.shape == (48, 3, 4, 4)
    level = float(zero_snr_signal_levels()[220])
    noise = torch.randn(start.shape, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(start, 0.5 * level + noise * (1 - level**2) ** 0.5)
    audio = torch.ones(9, 64)
    mixed = sr_audio_input(audio, torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        mixed, torch.randn(9, 64, generator=torch.Generator().manual_seed(2)) * 0.7 + 0.3
    )
