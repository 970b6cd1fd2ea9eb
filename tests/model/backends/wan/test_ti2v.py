"""Wan 2.2 TI2V-5B: two pipeline classes over one set of modules, t2v and i2v in one forward."""

from __future__ import annotations

from model.backends import create_backend
from model.backends.wan.ti2v import WanTI2VBackend
from model.registry import TaskFamily
from model.sample_jobs import sample_job
from tests.support.specs import tiny_spec
from tests.support.stepcheck import max_diff, run_together


def test_t2v_and_i2v_share_modules_and_forwards() -> None:
    backend = create_backend(tiny_spec("wan-ti2v", "happyhorse-1.0-t2v"))
    assert isinstance(backend, WanTI2VBackend)
    assert backend.i2v.transformer is backend.pipe.transformer
    assert backend.i2v.scheduler is backend.pipe.scheduler  # the sampler option reaches both
    assert backend.i2v.config.expand_timesteps
    t2v, i2v = sample_job(TaskFamily.T2V, 1), sample_job(TaskFamily.I2V, 2)
    frames, sizes = run_together(backend, [t2v, i2v])
    assert sizes == [2, 2, 2]
    for got, one in zip(frames, (t2v, i2v), strict=True):
        assert max_diff(got, backend.generate(one).frames) < 1e-4
