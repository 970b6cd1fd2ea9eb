"""The MagiHuman backend: the engine against the plain one-job loop (`_generate`), jobs of
different sizes sharing forwards, the SR stage, sound. Tiny random weights, 64x64 clips of 9
frames at 8 fps (3 latent frames, 26 audio latents), 3 steps."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from model.backends import backend_class, create_backend
from model.backends.magihuman.audio import OUTPUT_SAMPLE_RATE
from model.backends.magihuman.backend import MagiHumanBackend
from model.backends.magihuman.inputs import job_inputs
from model.backends.magihuman.staged import BASE, SR
from model.registry import TaskFamily, default_registry
from tests.support.magihuman import SR_OPTIONS, TOL, clip_diff, clips_together, magihuman_spec, make_job
from tests.support.mp4 import rms


@pytest.fixture(scope="module")
def backends() -> dict[str, MagiHumanBackend]:
    made = {
        "distill": create_backend(magihuman_spec()),
        "base": create_backend(magihuman_spec(variant="base")),
        "sr": create_backend(magihuman_spec(**SR_OPTIONS)),
    }
    assert all(isinstance(b, MagiHumanBackend) for b in made.values())
    return made  # type: ignore[return-value]


def test_registered_and_the_default_for_t2v_and_i2v() -> None:
    assert backend_class("magihuman") is MagiHumanBackend
    assert MagiHumanBackend.families == {TaskFamily.T2V, TaskFamily.I2V}
    backends = {name: spec.backend for name, spec in default_registry().items()}
    assert {backends[f"happyhorse-1.{v}-{f}"] for v in (0, 1) for f in ("t2v", "i2v")} == {"magihuman"}
    assert backends["happyhorse-1.0-r2v"] == backends["happyhorse-1.0-video-edit"] == "wan-vace"
    tiny = default_registry()["happyhorse-1.0-i2v"]
    assert (tiny.size_multiple, tiny.num_inference_steps) == (32, 8)  # the distilled DiT's 8 steps


def test_a_clip_has_frames_and_44_1_khz_stereo_sound_that_follows_the_seed(
    backends: dict[str, MagiHumanBackend],
) -> None:
    clip = backends["distill"].generate(make_job(1))
    assert clip.frames.shape == (9, 64, 64, 3) and clip.frames.dtype == np.float32
    assert clip.frames.min() >= 0.0 and clip.frames.max() <= 1.0
    assert clip.audio is not None and clip.sample_rate == OUTPUT_SAMPLE_RATE == 44100
    # 26 audio latents of 2048 samples at 51.2 kHz: 1.04 s, the 1 s clip plus its last latent
    assert clip.audio.shape == (2, 26 * 2048 * 441 // 512)
    assert rms(clip.audio) > 0.02
    other = backends["distill"].generate(make_job(2))
    assert other.audio is not None and rms(clip.audio - other.audio) > 0.01


@pytest.mark.parametrize("variant", ["distill", "base", "sr"])
@pytest.mark.parametrize("family", [TaskFamily.T2V, TaskFamily.I2V])
def test_the_engine_equals_the_one_job_loop(
    backends: dict[str, MagiHumanBackend], variant: str, family: TaskFamily
) -> None:
    backend = backends[variant]
    job = make_job(3, family)
    (engine,), sizes = clips_together(backend, [job])
    assert len(sizes) == (5 if variant == "sr" else 3)  # one forward a step, both CFG halves in it
    assert clip_diff(engine, backend.generate(job)) < TOL


def test_jobs_of_different_sizes_lengths_and_prompts_share_every_forward(
    backends: dict[str, MagiHumanBackend],
) -> None:
    backend = backends["base"]  # guided: each job's unguided copy rides in the same forward
    jobs = [
        make_job(4),
        make_job(5, TaskFamily.I2V, width=96, frames=5, prompt="rain on a tin roof"),
        make_job(6, width=32, height=96, frames=13, guidance_scale=3.0, prompt="a horse neighs"),
    ]
    together, sizes = clips_together(backend, jobs)
    assert sizes == [3, 3, 3]
    alone = [clips_together(backend, [job])[0][0] for job in jobs]
    assert max(clip_diff(a, b) for a, b in zip(together, alone, strict=True)) < TOL
    assert together[1].frames.shape == (5, 64, 96, 3) and together[2].frames.shape == (13, 96, 32, 3)


def test_a_job_in_its_sr_stage_never_shares_a_forward_with_one_in_its_base_stage(
    backends: dict[str, MagiHumanBackend],
) -> None:
    backend = backends["sr"]
    short, long = make_job(7, steps=1), make_job(8, TaskFamily.I2V, steps=3)
    together, sizes = clips_together(backend, [short, long])
    # step 1 both base; then short runs SR while long finishes its base: 2 forwards a step
    assert sizes[:3] == [2, 1, 1]
    assert clip_diff(together[0], backend.generate(short)) < TOL
    assert clip_diff(together[1], backend.generate(long)) < TOL


def test_the_token_budget_splits_a_stage_into_several_forwards(backends: dict[str, MagiHumanBackend]) -> None:
    backend = backends["distill"]
    one = backend.prepare(make_job(9))
    assert one.cost == 3 * 2 * 2 + 26 + one.prompt_embeds.shape[0]  # video, audio, text rows
    tight = create_backend(magihuman_spec(max_batch_tokens=one.cost))
    _, sizes = clips_together(tight, [make_job(9), make_job(10)])
    assert sizes == [1] * 6


def test_costs_and_keys_follow_the_stage(backends: dict[str, MagiHumanBackend]) -> None:
    guided = backends["base"].prepare(make_job(11))
    video_rows, audio_rows = 3 * 2 * 2, 26
    text_rows, negative_rows = guided.prompt_embeds.shape[0], backends["base"].negative.shape[0]
    assert guided.cost == 2 * (video_rows + audio_rows) + text_rows + negative_rows
    assert backends["base"].batch_key(guided).variant == BASE and backends["base"].batch_key(guided).guided
    backend = backends["sr"]
    state = backend.prepare(make_job(12, steps=1))
    base_key, base_cost = backend.batch_key(state), state.cost
    with torch.inference_mode():
        (velocity,) = backend.forward([state])
        state.latents = state.scheduler.step(velocity, state.timestep, state.latents)[0]
    state.step += 1
    sr_key = backend.batch_key(state)
    assert (base_key.variant, sr_key.variant) == (BASE, SR) and base_key.latent_shape == sr_key.latent_shape
    assert state.cost == 3 * 2 * 2 + 26 + text_rows and state.cost > base_cost  # 4x the video rows


def test_i2v_keeps_the_images_latent_in_frame_zero(backends: dict[str, MagiHumanBackend]) -> None:
    backend = backends["base"]
    job = make_job(13, TaskFamily.I2V)
    state = backend.prepare(job)
    with torch.inference_mode():
        image = job_inputs(
            backend.components, backend.settings, job, backend.device, backend.vae_lock
        ).base_image
        while not state.done:
            (velocity,) = backend.forward([state])
            state.latents = state.scheduler.step(velocity, state.timestep, state.latents)[0]
            state.step += 1
    assert image is not None
    video, _ = state.extra.result(state.latents)
    assert torch.equal(video[:, :1], image) and not torch.equal(video[:, 1:2], image)


def test_admitting_i2v_jobs_never_breaks_a_decode_in_flight(backends: dict[str, MagiHumanBackend]) -> None:
    """The engine encodes a new job's first frame on its loop thread while it decodes finished
    jobs on its decode thread, with one VAE (whose encode clears the cache a decode relies on)."""
    backend = backends["distill"]
    finished = [backend.prepare(make_job(seed, frames=33)) for seed in (1, 2)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def admit() -> None:
        seed = 100
        while not stop.is_set():
            try:
                backend.prepare(make_job(seed, TaskFamily.I2V, frames=33))
            except BaseException as exc:
                errors.append(exc)
            seed += 1

    admitting = threading.Thread(target=admit)
    admitting.start()
    try:
        for _ in range(4):
            assert [clip.frames.shape[0] for clip in backend.decode(finished)] == [33, 33]
    finally:
        stop.set()
        admitting.join()
    assert not errors, errors


def test_jobs_it_cannot_run_are_refused(backends: dict[str, MagiHumanBackend]) -> None:
    backend = backends["distill"]
    with pytest.raises(ValueError, match="multiples of 32"):
        backend.prepare(make_job(0, width=48))
    with pytest.raises(ValueError, match="does not serve r2v"):
        backend.generate(make_job(0, TaskFamily.R2V))
    with pytest.raises(ValueError, match="first frame"):
        backend.prepare(replace(make_job(0, TaskFamily.I2V), image=None))
    with pytest.raises(ValueError, match="cfg_parallel"):
        create_backend(replace(magihuman_spec(), cfg_parallel=True))
