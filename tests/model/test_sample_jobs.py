"""model.sample_jobs: every family's job carries its media, all decided by the seed."""

from __future__ import annotations

import numpy as np
import pytest

from model.registry import TaskFamily
from model.sample_jobs import sample_job


@pytest.mark.parametrize("family", list(TaskFamily))
def test_a_job_has_its_familys_media_at_native_size(family: TaskFamily) -> None:
    job = sample_job(family, 3, width=96, height=64, frames=9)
    assert (job.width, job.height, job.num_frames) == (96, 64, 9)
    assert (job.image is not None) == (family is TaskFamily.I2V)
    assert bool(job.reference_images) == (family is TaskFamily.R2V)
    assert (job.video is not None) == (family is TaskFamily.VIDEO_EDIT)
    if job.image is not None:
        assert job.image.size == (96, 64)
    if job.video is not None:
        assert job.video.shape == (9, 64, 96, 3) and job.video.dtype == np.uint8


def test_the_seed_decides_the_inputs_and_fields_override_them() -> None:
    a, b = sample_job(TaskFamily.I2V, 1), sample_job(TaskFamily.I2V, 1)
    assert a.prompt == b.prompt and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    c = sample_job(TaskFamily.I2V, 2)
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))
    assert sample_job(TaskFamily.I2V, 1, image=None, prompt="x").image is None
