"""The sampler a backend loads with: converted from the checkpoint's, keeping its flow shift."""

from __future__ import annotations

import pytest
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from model.backends.samplers import convert_scheduler, flow_shift, job_scheduler

UNIPC = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def test_conversion_keeps_the_flow_shift_and_returns_a_match_as_is() -> None:
    euler = convert_scheduler(UNIPC, "euler")
    assert isinstance(euler, FlowMatchEulerDiscreteScheduler) and flow_shift(euler) == 3.0
    back = convert_scheduler(euler, "unipc")
    assert isinstance(back, UniPCMultistepScheduler) and flow_shift(back) == 3.0
    assert convert_scheduler(UNIPC, "unipc") is UNIPC
    assert convert_scheduler(UNIPC, None) is UNIPC


def test_unknown_sampler_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'ddim'"):
        convert_scheduler(UNIPC, "ddim")


def test_each_job_gets_its_own_instance_with_its_steps() -> None:
    first, second = job_scheduler(UNIPC, 3, "cpu"), job_scheduler(UNIPC, 5, "cpu")
    assert first is not second and first is not UNIPC
    assert (len(first.timesteps), len(second.timesteps)) == (3, 5)
