"""The packed form of an LTX-2 job: both token grids in one tensor, stepped by a scheduler pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.backends.ltx2.packing import PackedScheduler, pack, packed_sampler, unpack
from model.registry import TaskFamily
from model.sample_jobs import sample_job
from model.step import JobState


def test_pack_round_trip() -> None:
    video, audio = np.arange(24.0).reshape(1, 4, 6), np.arange(10.0).reshape(1, 5, 2)
    packed = pack(torch.tensor(video), torch.tensor(audio))
    assert packed.shape == (1, 34)
    back = unpack(packed, (4, 6), (5, 2))
    assert np.array_equal(back[0].numpy(), video) and np.array_equal(back[1].numpy(), audio)


def test_an_ltx2_state_steps_only_with_a_packed_scheduler() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    euler = FlowMatchEulerDiscreteScheduler()
    euler.set_timesteps(2)
    latents = torch.zeros(1, 34)
    packed = PackedScheduler(euler, euler, (4, 6), (5, 2))
    state = JobState(
        job=sample_job(TaskFamily.T2V, 1),
        backend_id="ltx2@test",
        latents=latents,
        scheduler=packed,
        timesteps=euler.timesteps,
        prompt_embeds=None,
        negative_embeds=None,
        guidance_scale=1.0,
        tokens=9,
        extra=None,
    )
    assert packed_sampler(state) is packed
    state.scheduler = euler
    with pytest.raises(TypeError, match="PackedScheduler, not FlowMatchEulerDiscreteScheduler"):
        packed_sampler(state)
