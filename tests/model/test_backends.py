"""model.backends: the tiny models save and load back through the real from_pretrained path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from model.backends import BACKENDS, NativeJob, create_backend, save_tiny
from model.generator import VideoGenerator, native_job
from model.registry import ModelSpec, TaskFamily, default_registry
from model.request import GenerationRequest
from tests.model.probes import read_mp4
from tests.videos import make_image

CASES = {
    "wan-ti2v": ("happyhorse-1.0-i2v", TaskFamily.I2V, {"first_frame": make_image(320, 192)}),
    "wan-vace": ("happyhorse-1.0-r2v", TaskFamily.R2V, {"reference_images": (make_image(400, 400),)}),
}


def job_for(spec: ModelSpec, family: TaskFamily, media: dict[str, object]) -> NativeJob:
    req = GenerationRequest(
        task_id="rt",
        model=spec.name,
        family=family,
        prompt="a horse",
        width=320,
        height=192,
        duration_s=1,
        seed=3,
        **media,
    )  # type: ignore[arg-type]
    return native_job(spec, req, None)


@pytest.mark.parametrize("backend", sorted(CASES))
def test_save_tiny_round_trip_matches_in_memory(
    backend: str, tmp_path: Path, generator: VideoGenerator
) -> None:
    name, family, media = CASES[backend]
    folder = save_tiny(backend, tmp_path / backend)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == {"wan-ti2v": "WanPipeline", "wan-vace": "WanVACEPipeline"}[backend]
    spec = default_registry()[name]
    loaded = create_backend(dataclasses.replace(spec, checkpoint=str(folder)))
    job = job_for(spec, family, media)
    expected = generator.backend(name).generate(job).frames
    got = loaded.generate(job).frames
    assert got.shape == expected.shape == (job.num_frames, job.height, job.width, 3)
    assert np.array_equal(got, expected)


def test_generator_loads_a_checkpoint_folder(tmp_path: Path) -> None:
    folder = save_tiny("wan-ti2v", tmp_path / "ti2v")
    spec = dataclasses.replace(default_registry()["happyhorse-1.0-t2v"], checkpoint=str(folder))
    gen = VideoGenerator({spec.name: spec})
    req = GenerationRequest(
        task_id="ckpt",
        model=spec.name,
        family=TaskFamily.T2V,
        prompt="a horse",
        width=320,
        height=192,
        duration_s=3,
        seed=1,
    )
    assert read_mp4(gen.generate(req, tmp_path).path).frames.shape == (72, 192, 320, 3)


def test_backend_refuses_a_family_it_does_not_serve(generator: VideoGenerator) -> None:
    spec = default_registry()["happyhorse-1.0-t2v"]
    job = dataclasses.replace(job_for(spec, TaskFamily.T2V, {}), family=TaskFamily.R2V)
    with pytest.raises(ValueError, match="does not serve"):
        generator.backend(spec.name).generate(job)


def test_unknown_backend_and_registry() -> None:
    assert {"wan-ti2v", "wan-vace", "wan-i2v", "wan-t2v", "ltx2"} <= set(BACKENDS)
    with pytest.raises(ValueError, match="unknown backend"):
        save_tiny("no-such-backend", "/nonexistent")


def test_checkpoint_dtype_keeps_the_vae_in_float32(tmp_path: Path) -> None:
    import torch

    folder = save_tiny("wan-ti2v", tmp_path / "bf16")
    spec = dataclasses.replace(
        default_registry()["happyhorse-1.0-t2v"], checkpoint=str(folder), dtype="bfloat16"
    )
    backend = create_backend(spec)
    assert backend.t2v.transformer.dtype == torch.bfloat16  # type: ignore[attr-defined]
    assert backend.t2v.vae.dtype == torch.float32  # type: ignore[attr-defined]
    frames = backend.generate(job_for(spec, TaskFamily.T2V, {})).frames
    assert frames.dtype == np.float32 and np.isfinite(frames).all()
