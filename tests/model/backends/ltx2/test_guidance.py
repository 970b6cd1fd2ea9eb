"""LTX-2 guidance settings: from the job and the spec's options, as the stock `__call__` takes them."""

from __future__ import annotations

import pytest

from model.backends.ltx2.guidance import guidance_for
from model.registry import TaskFamily
from model.sample_jobs import sample_job

JOB = sample_job(TaskFamily.T2V, 1, guidance=3.0)


def test_audio_knobs_default_to_the_video_ones() -> None:
    guidance = guidance_for({"guidance_rescale": 0.7}, JOB)
    assert (guidance.guidance_scale, guidance.audio_guidance_scale) == (3.0, 3.0)
    assert guidance.audio_guidance_rescale == 0.7
    assert guidance.cfg and not guidance.stg and not guidance.modality


def test_switches_decide_batching_but_scales_do_not() -> None:
    base = guidance_for({"stg_scale": 1.0, "stg_blocks": [1]}, JOB)
    other_scales = guidance_for({"stg_scale": 2.0, "stg_blocks": [1], "audio_guidance_scale": 9.0}, JOB)
    other_blocks = guidance_for({"stg_scale": 1.0, "stg_blocks": [0]}, JOB)
    assert base.switches == other_scales.switches
    assert base.switches != other_blocks.switches
    assert base.pipeline_kwargs()["spatio_temporal_guidance_blocks"] == [1]


def test_stg_without_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match="stg_blocks"):
        guidance_for({"stg_scale": 1.0}, JOB)
