"""LTX-2 (joint video + audio): the engine against the stock pipelines, batching, sound in the MP4,
and the real loading path. Tiny random weights, 32x32 clips of 5 frames, 2 steps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.backends import backend_class, create_backend, save_tiny
from model.backends.ltx2.backend import LTX2Backend
from model.engine.engine import Engine
from model.generator import VideoGenerator
from model.registry import ModelSpec, TaskFamily
from model.request import GenerationRequest
from model.sample_jobs import sample_job
from model.step import NativeClip, NativeJob
from tests.support.mp4 import read_mp4, rms

TOL = 1e-4
# Every guidance mode of the stock pipeline at once: CFG with its own audio scale, rescale, STG
# on block 1 and modality isolation (each an extra transformer call per step).
ALL_GUIDANCE = {
    "audio_guidance_scale": 7.0,
    "guidance_rescale": 0.7,
    "stg_scale": 1.0,
    "stg_blocks": [1],
    "modality_scale": 3.0,
}


def ltx2_spec(name: str = "happyhorse-1.1-t2v", **fields: Any) -> ModelSpec:
    base: dict[str, Any] = {
        "size_multiple": 32,
        "native_pixels": 32 * 32,
        "num_inference_steps": 2,
        "guidance_scale": 3.0,
        "options": {"audio_guidance_scale": 4.0},
    }
    return ModelSpec(name=name, family=TaskFamily.T2V, backend="ltx2", **{**base, **fields})


def make_job(
    seed: int, *, family: TaskFamily = TaskFamily.T2V, steps: int = 2, guidance: float = 3.0, prompt: str = ""
) -> NativeJob:
    """A 32x32 clip of 5 frames (the tiny VAE's grid)."""
    job = sample_job(family, seed, width=32, height=32, frames=5, steps=steps, guidance=guidance)
    return replace(job, prompt=prompt) if prompt else job


def diff(a: NativeClip, b: NativeClip) -> float:
    """Largest absolute difference over frames and sound."""
    assert a.frames.shape == b.frames.shape and a.audio is not None and b.audio is not None
    assert a.audio.shape == b.audio.shape
    return max(float(np.abs(a.frames - b.frames).max()), float(np.abs(a.audio - b.audio).max()))


@pytest.fixture(scope="module")
def backend() -> LTX2Backend:
    made = create_backend(ltx2_spec())
    assert isinstance(made, LTX2Backend)
    return made


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    running = Engine()
    yield running
    running.shutdown()


@pytest.fixture(scope="module")
def stock_t2v(backend: LTX2Backend) -> NativeClip:
    return backend.generate(make_job(3))


def test_registered() -> None:
    assert backend_class("ltx2") is LTX2Backend
    assert LTX2Backend.families == {TaskFamily.T2V, TaskFamily.I2V}


def test_stock_clip_has_sound(backend: LTX2Backend, stock_t2v: NativeClip) -> None:
    assert stock_t2v.frames.shape == (5, 32, 32, 3) and stock_t2v.frames.dtype == np.float32
    assert stock_t2v.audio is not None and stock_t2v.audio.dtype == np.float32
    assert stock_t2v.sample_rate == backend.t2v.vocoder.config.output_sampling_rate == 16000
    channels, samples = stock_t2v.audio.shape
    assert channels == 2 and samples / 16000 == pytest.approx(5 / 8, abs=0.05)
    assert rms(stock_t2v.audio) > 0


def test_frame_rule_rounds_to_vae_grid(backend: LTX2Backend) -> None:
    # the tiny VAE compresses time 2x (real LTX-2: 8x), so clips have 2k+1 frames
    assert backend.t2v.vae_temporal_compression_ratio == 2
    job = make_job(0)
    assert backend.num_frames(job) == 5
    assert backend.num_frames(replace(job, num_frames=6)) == 7
    down = create_backend(ltx2_spec(options={"frame_rule": "down"}))
    assert isinstance(down, LTX2Backend)
    assert down.num_frames(replace(job, num_frames=6)) == 5


def test_engine_equals_stock_t2v(backend: LTX2Backend, engine: Engine, stock_t2v: NativeClip) -> None:
    assert diff(engine.run(backend, make_job(3)), stock_t2v) < TOL


def test_engine_equals_stock_i2v(backend: LTX2Backend, engine: Engine) -> None:
    job = make_job(5, family=TaskFamily.I2V)
    assert diff(engine.run(backend, job), backend.generate(job)) < TOL


def test_engine_equals_stock_every_guidance_mode(engine: Engine) -> None:
    guided = create_backend(ltx2_spec(options=ALL_GUIDANCE))
    job = make_job(4)
    assert diff(engine.run(guided, job), guided.generate(job)) < TOL


def test_batch_of_three_equals_alone(backend: LTX2Backend) -> None:
    # different prompts, seeds, CFG scales and step counts (so different timesteps in one forward)
    jobs = [
        make_job(1, steps=2, guidance=3.0),
        make_job(2, steps=3, guidance=4.5, prompt="rain drumming on a tin roof"),
        make_job(3, steps=2, guidance=2.0, prompt="wind"),
    ]
    sizes: list[int] = []
    batching = Engine(observer=lambda _name, size, _s: sizes.append(size))
    try:
        alone = [batching.run(backend, job) for job in jobs]
        sizes.clear()
        # hold the loop's (re-entrant) lock so all three are admitted at one step boundary
        with batching._cond:
            futures = [batching.submit(backend, job) for job in jobs]
        together = [future.result() for future in futures]
    finally:
        batching.shutdown()
    assert sizes[0] == 3
    assert max(diff(a, b) for a, b in zip(alone, together, strict=True)) < TOL


def test_mp4_has_audible_aac_track(tmp_path: Path) -> None:
    generator = VideoGenerator({"happyhorse-1.1-t2v": ltx2_spec()})
    try:
        request = GenerationRequest(
            task_id="ltx2-sound",
            model="happyhorse-1.1-t2v",
            family=TaskFamily.T2V,
            prompt="a horse neighs",
            width=64,
            height=64,
            duration_s=1.0,
            seed=11,
            watermark=False,
        )
        result = generator.generate(request, tmp_path)
    finally:
        generator.close()
    facts = read_mp4(result.path)
    assert facts.audio_codec == "aac" and facts.frames.shape[0] == 24
    assert facts.audio_seconds == pytest.approx(facts.video_seconds, abs=0.03)
    assert rms(facts.audio) > 1e-4


def test_save_tiny_then_from_pretrained_equals_in_memory(
    tmp_path: Path, backend: LTX2Backend, stock_t2v: NativeClip
) -> None:
    folder = save_tiny("ltx2", tmp_path / "ltx2")
    assert (folder / "model_index.json").is_file() and (folder / "vocoder").is_dir()
    loaded = create_backend(ltx2_spec(checkpoint=str(folder)))
    assert loaded.t2v.tokenizer.model_max_length == backend.t2v.tokenizer.model_max_length
    assert diff(loaded.generate(make_job(3)), stock_t2v) < TOL
