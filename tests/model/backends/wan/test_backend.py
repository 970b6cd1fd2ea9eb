"""The Wan family's step API against its stock pipelines, for every Wan pipeline and layout.

For each case: the engine's frames equal `generate`'s (one job, and batched with others), with
both samplers. For Wan 2.2 A14B, jobs on either side of the expert boundary run in separate
forwards and still equal the stock loop; the step cache is released on every expert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from model.backends.wan.backend import HIGH_NOISE, LOW_NOISE, WanBackend
from model.registry import ModelSpec, TaskFamily
from model.sample_jobs import sample_job, sample_picture
from model.step import NativeJob
from tests.support.stepcheck import (
    Backends,
    assert_batch_invariant,
    assert_engine_equals_stock,
    backend_cache,
    engine_frames,
    leftover_cache_contexts,
    max_diff,
    run_together,
    with_options,
)

# Two latent frames (three with one reference): the VAE decode dominates the CPU time, so only
# the one-job check runs the full 17 frames.
FRAMES = 5


def _spec(backend: str, family: TaskFamily, **options: Any) -> ModelSpec:
    return ModelSpec(name=f"test-{backend}", family=family, backend=backend, options=options)


SPECS: dict[str, ModelSpec] = {
    "ti2v": _spec("wan-ti2v", TaskFamily.I2V),
    # per-layer context weights, so the scale really reaches the transformer
    "vace": _spec("wan-vace", TaskFamily.R2V, conditioning_scale=[0.7, 1.3]),
    "i2v": _spec("wan-i2v", TaskFamily.I2V),
    "i2v-a14b": _spec("wan-i2v", TaskFamily.I2V, two_experts=True, guidance_scale_2=3.0),
    "t2v": _spec("wan-t2v", TaskFamily.T2V),
    "t2v-a14b": _spec("wan-t2v", TaskFamily.T2V, two_experts=True, guidance_scale_2=3.0),
}


def _r2v(seed: int, **kw: Any) -> NativeJob:
    refs = (sample_picture(64, 64, seed), sample_picture(48, 64, seed + 100))  # the second one letterboxed
    return sample_job(TaskFamily.R2V, seed, reference_images=refs, **{"frames": FRAMES, **kw})


def _maker(family: TaskFamily) -> Callable[..., NativeJob]:
    def make(seed: int, **kw: Any) -> NativeJob:
        return sample_job(family, seed, **{"frames": FRAMES, **kw})

    return make


# case -> (spec, job maker(seed, **overrides))
CASES: dict[str, tuple[str, Callable[..., NativeJob]]] = {
    "ti2v-t2v": ("ti2v", _maker(TaskFamily.T2V)),
    "ti2v-i2v": ("ti2v", _maker(TaskFamily.I2V)),
    "vace-r2v": ("vace", _r2v),
    "vace-edit": ("vace", _maker(TaskFamily.VIDEO_EDIT)),
    "i2v-2.1": ("i2v", _maker(TaskFamily.I2V)),
    "i2v-a14b": ("i2v-a14b", _maker(TaskFamily.I2V)),
    "t2v-2.1": ("t2v", _maker(TaskFamily.T2V)),
    "t2v-a14b": ("t2v-a14b", _maker(TaskFamily.T2V)),
}


@pytest.fixture(scope="module")
def backends() -> Backends:
    """Backends built once per spec for the module."""
    return backend_cache()


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_job_through_the_engine_equals_stock(case: str, backends: Backends) -> None:
    spec, make = CASES[case]
    assert_engine_equals_stock(backends(SPECS[spec]), make(1, frames=17))


@pytest.mark.parametrize("case", sorted(CASES))
def test_batching_with_two_other_jobs_changes_nothing(case: str, backends: Backends) -> None:
    spec, make = CASES[case]
    assert_batch_invariant(backends(SPECS[spec]), make(1), [make(2), make(3)])


@pytest.mark.parametrize("sampler", ["euler", "unipc"])
@pytest.mark.parametrize("case", ["ti2v-t2v", "vace-r2v", "i2v-2.1", "t2v-a14b"])
def test_both_samplers_equal_stock(case: str, sampler: str, backends: Backends) -> None:
    spec, make = CASES[case]
    backend = backends(with_options(SPECS[spec], sampler=sampler))
    assert isinstance(backend, WanBackend)
    expected = {"euler": "FlowMatchEulerDiscreteScheduler", "unipc": "UniPCMultistepScheduler"}[sampler]
    assert type(backend.pipe.scheduler).__name__ == expected
    assert_engine_equals_stock(backend, make(4, steps=4))


def test_a_job_of_a_family_the_backend_does_not_serve_is_refused(backends: Backends) -> None:
    backend = backends(SPECS["t2v"])
    job = sample_job(TaskFamily.R2V, 1)
    with pytest.raises(ValueError, match="'wan-t2v' does not serve r2v"):
        backend.generate(job)
    with pytest.raises(ValueError, match="does not serve"):
        backend.prepare(job)


@pytest.mark.parametrize(
    ("spec", "family", "missing", "message"),
    [
        ("i2v", TaskFamily.I2V, "image", "i2v needs a first frame"),
        ("vace", TaskFamily.R2V, "reference_images", "r2v needs at least one reference image"),
        ("vace", TaskFamily.VIDEO_EDIT, "video", "video-edit needs a source video"),
    ],
)
def test_a_job_without_its_media_is_refused(
    spec: str, family: TaskFamily, missing: str, message: str, backends: Backends
) -> None:
    job = replace(
        sample_job(family, 1, frames=FRAMES), **{missing: () if missing == "reference_images" else None}
    )
    with pytest.raises(ValueError, match=message):
        backends(SPECS[spec]).prepare(job)


@pytest.mark.parametrize("spec", ["i2v-a14b", "t2v-a14b"])
def test_a14b_batches_by_expert_and_equals_stock(spec: str, backends: Backends) -> None:
    backend = backends(SPECS[spec])
    assert isinstance(backend, WanBackend) and len(backend.experts) == 2
    make = CASES[spec][1]
    # UniPC, shift 3: 3 steps -> t = 999, 857, 600; 4 steps -> 999, 900, 750, 500. At step 1 the
    # 3-step job has crossed the boundary (0.875 / 0.9 x 1000) and the 4-step job has not.
    short, long = make(1, steps=3), make(2, steps=4)
    states = [backend.prepare(short), backend.prepare(long)]
    assert backend.batch_key(states[0]) == backend.batch_key(states[1])
    for state in states:
        state.step = 1
    assert [backend.active_expert(s) for s in states] == [LOW_NOISE, HIGH_NOISE]
    assert backend.batch_key(states[0]) != backend.batch_key(states[1])

    frames, sizes = run_together(backend, [short, long])
    # step 0 together, step 1 apart (one forward per expert), step 2 together on the low-noise
    # expert, then the 4-step job's last step alone
    assert sizes == [2, 1, 1, 2, 1], sizes
    for got, one in zip(frames, (short, long), strict=True):
        assert max_diff(got, backend.generate(one).frames) < 1e-4


def test_a14b_experts_and_second_guidance_are_used(backends: Backends) -> None:
    """The low-noise expert and `guidance_scale_2` change the frames (they are not dead options)."""
    one = CASES["t2v-a14b"][1](5)
    base = backends(SPECS["t2v-a14b"]).generate(one).frames
    single = backends(SPECS["t2v"]).generate(one).frames
    other_g2 = backends(with_options(SPECS["t2v-a14b"], guidance_scale_2=7.0)).generate(one).frames
    assert max_diff(base, single) > 1e-3
    assert max_diff(base, other_g2) > 1e-3


@pytest.mark.parametrize("case", ["vace-r2v", "t2v-a14b"])
def test_step_cache_is_active_and_released_on_every_expert(case: str, backends: Backends) -> None:
    spec_name, make = CASES[case]
    cached = backends(with_options(SPECS[spec_name], cache={"type": "first_block", "threshold": 0.5}))
    assert isinstance(cached, WanBackend)
    one = make(9, steps=6)
    plain = engine_frames(backends(SPECS[spec_name]), one)
    frames, _ = run_together(cached, [one, make(10, steps=6)])
    assert max_diff(frames[0], plain) > 1e-3, "the cache changed nothing: it is not active"
    assert len(cached.experts) == (2 if "a14b" in case else 1)
    assert leftover_cache_contexts(cached.experts) == []
