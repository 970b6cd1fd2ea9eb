"""Loading Wan pipelines: the tiny models saved in diffusers layout load back through the real
`from_pretrained` path to the same frames, in the checkpoint's dtype with a float32 VAE."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from model.backends import backend_class, create_backend
from model.backends.wan.backend import WanBackend
from model.registry import ModelSpec, TaskFamily
from model.sample_jobs import sample_job
from tests.support.specs import tiny_spec
from tests.support.stepcheck import max_diff, run_together

# case -> (backend, family, two_experts, tolerance of the reloaded stock frames)
CASES = {
    # VACE and TI2V reload bit-identical; a reloaded 16-channel WanTransformer3DModel rounds
    # differently (~1e-7)
    "ti2v": ("wan-ti2v", TaskFamily.I2V, False, 0.0),
    "vace": ("wan-vace", TaskFamily.R2V, False, 0.0),
    "i2v-2.1": ("wan-i2v", TaskFamily.I2V, False, 1e-6),
    "i2v-a14b": ("wan-i2v", TaskFamily.I2V, True, 1e-6),
    "t2v-2.1": ("wan-t2v", TaskFamily.T2V, False, 1e-6),
    "t2v-a14b": ("wan-t2v", TaskFamily.T2V, True, 1e-6),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_save_tiny_loads_back_to_the_same_frames(case: str, tmp_path: Path) -> None:
    name, family, two_experts, tol = CASES[case]
    cls = backend_class(name)
    assert issubclass(cls, WanBackend)
    cls.save_tiny(tmp_path, 0, two_experts=two_experts)
    spec = ModelSpec(name=f"test-{case}", family=family, backend=name, options={"two_experts": two_experts})
    loaded = create_backend(replace(spec, checkpoint=str(tmp_path)))
    one = sample_job(family, 8, frames=5)
    expected = create_backend(spec).generate(one).frames
    assert max_diff(loaded.generate(one).frames, expected) <= tol
    assert max_diff(run_together(loaded, [one])[0][0], expected) < 1e-4


def test_checkpoint_dtype_keeps_the_vae_in_float32(tmp_path: Path) -> None:
    backend_class("wan-ti2v").save_tiny(tmp_path)
    spec = tiny_spec("wan-ti2v", "happyhorse-1.0-t2v", checkpoint=str(tmp_path), dtype="bfloat16")
    backend = create_backend(spec)
    assert isinstance(backend, WanBackend)
    assert backend.pipe.transformer.dtype == torch.bfloat16
    assert backend.pipe.vae.dtype == torch.float32
    frames = backend.generate(sample_job(TaskFamily.T2V, 1, frames=5)).frames
    assert frames.dtype == np.float32 and np.isfinite(frames).all()


@pytest.mark.parametrize("name", ["wan-ti2v", "wan-vace"])
def test_a_two_expert_layout_of_a_single_transformer_model_is_refused(name: str) -> None:
    spec = ModelSpec(name="two", family=TaskFamily.T2V, backend=name, options={"two_experts": True})
    with pytest.raises(ValueError, match=f"{name} has no two-expert layout"):
        create_backend(spec)
