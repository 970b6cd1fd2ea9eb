"""Wan VACE specifics: reference frames in front of the video, and the context's weight."""

from __future__ import annotations

from dataclasses import replace

import pytest

from model.backends import create_backend
from model.registry import ModelSpec, TaskFamily
from model.sample_jobs import sample_job, sample_picture
from tests.support.stepcheck import max_diff, run_together

SPEC = ModelSpec(name="test-vace", family=TaskFamily.R2V, backend="wan-vace")


def test_jobs_with_different_reference_counts_share_a_forward() -> None:
    """5 frames + 1 reference and 9 frames without: the same latent shape, so one forward;
    decoding trims each job's own reference frames."""
    backend = create_backend(SPEC)
    r2v = sample_job(TaskFamily.R2V, 6, frames=5, reference_images=(sample_picture(64, 64, 6),))
    edit = sample_job(TaskFamily.VIDEO_EDIT, 7, frames=9)
    assert backend.prepare(r2v).latents.shape == backend.prepare(edit).latents.shape
    frames, sizes = run_together(backend, [r2v, edit])
    assert max(sizes) == 2
    for got, one in zip(frames, (r2v, edit), strict=True):
        assert got.shape[0] == one.num_frames
        assert max_diff(got, backend.generate(one).frames) < 1e-4


def test_the_context_weight_changes_the_frames_and_must_fit_the_layers() -> None:
    job = sample_job(TaskFamily.R2V, 3, frames=5)
    plain = create_backend(SPEC).generate(job).frames
    weighted = create_backend(replace(SPEC, options={"conditioning_scale": 0.5}))
    assert max_diff(weighted.generate(job).frames, plain) > 1e-3
    with pytest.raises(ValueError, match="3 values for 2 VACE layers"):
        create_backend(replace(SPEC, options={"conditioning_scale": [1.0, 1.0, 1.0]}))


def test_a_source_of_the_wrong_length_is_refused() -> None:
    job = sample_job(TaskFamily.VIDEO_EDIT, 4, frames=9)
    with pytest.raises(ValueError, match="source has 9 frames, the job wants 5"):
        create_backend(SPEC).prepare(replace(job, num_frames=5))
