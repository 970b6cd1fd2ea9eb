"""The step API of the Wan VACE, Wan 2.1/2.2 I2V and T2V backends against their stock pipelines.

For each backend: the engine's frames equal `generate`'s (one job, and batched with others),
with both samplers, and a saved tiny model loads back to the same frames. For Wan 2.2 A14B, jobs
on either side of the expert boundary run in separate forwards and still equal the stock loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model.backends import BACKENDS, NativeJob, create_backend
from model.backends.base import Backend
from model.backends.wan_t2v import HIGH_NOISE, LOW_NOISE, WanExpertBackend
from model.registry import ModelSpec, TaskFamily
from tests.model.engine.stepcheck import (
    assert_batch_invariant,
    assert_engine_equals_stock,
    clip,
    engine_frames,
    job,
    max_diff,
    picture,
    run_together,
    with_options,
)

# Two latent frames (three with one reference): the VAE decode dominates the CPU time, so only
# the one-job check runs the full 17 frames.
FRAMES = 5


def _spec(backend: str, family: TaskFamily, **options: Any) -> ModelSpec:
    return ModelSpec(name=f"test-{backend}", family=family, backend=backend, options=options)


SPECS: dict[str, ModelSpec] = {
    # per-layer context weights, so the scale really reaches the transformer
    "vace": _spec("wan-vace", TaskFamily.R2V, conditioning_scale=[0.7, 1.3]),
    "i2v": _spec("wan-i2v", TaskFamily.I2V),
    "i2v-a14b": _spec("wan-i2v", TaskFamily.I2V, two_experts=True, guidance_scale_2=3.0),
    "t2v": _spec("wan-t2v", TaskFamily.T2V),
    "t2v-a14b": _spec("wan-t2v", TaskFamily.T2V, two_experts=True, guidance_scale_2=3.0),
}


def _r2v(seed: int, **kw: Any) -> NativeJob:
    refs = (picture(64, 64, seed), picture(48, 64, seed + 100))  # the second one letterboxed
    return job(TaskFamily.R2V, seed, reference_images=refs, **{"frames": FRAMES, **kw})


def _edit(seed: int, **kw: Any) -> NativeJob:
    frames = kw.pop("frames", FRAMES)
    return job(TaskFamily.VIDEO_EDIT, seed, video=clip(64, 64, frames, seed), frames=frames, **kw)


def _i2v(seed: int, **kw: Any) -> NativeJob:
    return job(TaskFamily.I2V, seed, image=picture(64, 64, seed), **{"frames": FRAMES, **kw})


def _t2v(seed: int, **kw: Any) -> NativeJob:
    return job(TaskFamily.T2V, seed, **{"frames": FRAMES, **kw})


# case -> (spec, job maker(seed, **overrides))
CASES: dict[str, tuple[str, Callable[..., NativeJob]]] = {
    "vace-r2v": ("vace", _r2v),
    "vace-edit": ("vace", _edit),
    "i2v-2.1": ("i2v", _i2v),
    "i2v-a14b": ("i2v-a14b", _i2v),
    "t2v-2.1": ("t2v", _t2v),
    "t2v-a14b": ("t2v-a14b", _t2v),
}


@pytest.fixture(scope="module")
def backends() -> Callable[[ModelSpec], Backend]:
    """Backends built once per spec for the module."""
    loaded: dict[str, Backend] = {}

    def get(spec: ModelSpec) -> Backend:
        key = repr(spec)  # specs hold an options dict: not hashable
        if key not in loaded:
            loaded[key] = create_backend(spec)
        return loaded[key]

    return get


def test_backends_are_registered() -> None:
    assert {"wan-vace", "wan-i2v", "wan-t2v"} <= set(BACKENDS)
    assert BACKENDS["wan-i2v"].families == frozenset({TaskFamily.I2V})
    assert BACKENDS["wan-t2v"].families == frozenset({TaskFamily.T2V})


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_job_through_the_engine_equals_stock(case: str, backends: Callable[..., Backend]) -> None:
    spec, make = CASES[case]
    assert_engine_equals_stock(backends(SPECS[spec]), make(1, frames=17))


@pytest.mark.parametrize("case", sorted(CASES))
def test_batching_with_two_other_jobs_changes_nothing(case: str, backends: Callable[..., Backend]) -> None:
    spec, make = CASES[case]
    assert_batch_invariant(backends(SPECS[spec]), make(1), [make(2), make(3)])


@pytest.mark.parametrize("sampler", ["euler", "unipc"])
@pytest.mark.parametrize("case", ["vace-r2v", "i2v-2.1", "t2v-a14b"])
def test_both_samplers_equal_stock(case: str, sampler: str, backends: Callable[..., Backend]) -> None:
    spec, make = CASES[case]
    backend = backends(with_options(SPECS[spec], sampler=sampler))
    expected = {"euler": "FlowMatchEulerDiscreteScheduler", "unipc": "UniPCMultistepScheduler"}[sampler]
    assert type(backend.pipe.scheduler).__name__ == expected
    assert_engine_equals_stock(backend, make(4))


@pytest.mark.parametrize("spec", ["i2v-a14b", "t2v-a14b"])
def test_a14b_batches_by_expert_and_equals_stock(spec: str, backends: Callable[..., Backend]) -> None:
    backend = backends(SPECS[spec])
    assert isinstance(backend, WanExpertBackend)
    make = _i2v if spec.startswith("i2v") else _t2v
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


def test_a14b_experts_and_second_guidance_are_used(backends: Callable[..., Backend]) -> None:
    """The low-noise expert and `guidance_scale_2` change the frames (they are not dead options)."""
    one = _t2v(5)
    base = backends(SPECS["t2v-a14b"]).generate(one).frames
    single = backends(SPECS["t2v"]).generate(one).frames
    other_g2 = backends(with_options(SPECS["t2v-a14b"], guidance_scale_2=7.0)).generate(one).frames
    assert max_diff(base, single) > 1e-3
    assert max_diff(base, other_g2) > 1e-3


def test_vace_jobs_with_different_reference_counts_share_a_forward(backends: Callable[..., Backend]) -> None:
    """5 frames + 1 reference and 9 frames without: the same latent shape, so one forward;
    decoding trims each job's own reference frames."""
    backend = backends(SPECS["vace"])
    r2v = job(TaskFamily.R2V, 6, frames=5, reference_images=(picture(64, 64, 6),))
    edit = _edit(7, frames=9)
    assert backend.prepare(r2v).latents.shape == backend.prepare(edit).latents.shape
    frames, sizes = run_together(backend, [r2v, edit])
    assert max(sizes) == 2
    for got, one in zip(frames, (r2v, edit), strict=True):
        assert got.shape[0] == one.num_frames
        assert max_diff(got, backend.generate(one).frames) < 1e-4


@pytest.mark.parametrize("case", ["vace-r2v", "i2v-2.1", "i2v-a14b", "t2v-2.1", "t2v-a14b"])
def test_save_tiny_loads_back_to_the_same_frames(
    case: str, tmp_path: Path, backends: Callable[..., Backend]
) -> None:
    spec_name, make = CASES[case]
    spec = SPECS[spec_name]
    cls = BACKENDS[spec.backend]
    if spec.options.get("two_experts"):
        cls.save_tiny(tmp_path, 0, two_experts=True)  # type: ignore[call-arg]
    else:
        cls.save_tiny(tmp_path, 0)
    loaded = create_backend(dataclasses.replace(spec, checkpoint=str(tmp_path)))
    one = make(8)
    expected = backends(spec).generate(one).frames
    # VACE reloads bit-identical; a reloaded WanTransformer3DModel rounds differently (~1e-7)
    assert max_diff(loaded.generate(one).frames, expected) < 1e-6
    assert max_diff(run_together(loaded, [one])[0][0], expected) < 1e-4


@pytest.mark.parametrize("case", ["vace-r2v", "t2v-a14b"])
def test_step_cache_is_active_and_released_on_every_transformer(
    case: str, backends: Callable[..., Backend]
) -> None:
    from diffusers.hooks.hooks import StateManager

    spec_name, make = CASES[case]
    cached = backends(with_options(SPECS[spec_name], cache={"type": "first_block", "threshold": 0.5}))
    one = make(9, steps=6)
    plain = engine_frames(backends(SPECS[spec_name]), one)
    frames, _ = run_together(cached, [one, make(10, steps=6)])
    assert max_diff(frames[0], plain) > 1e-3, "the cache changed nothing: it is not active"
    modules = cached.cache_modules()
    assert len(modules) == (2 if "a14b" in case else 1)
    leftovers = [
        name
        for module in modules
        for registry in (module._diffusers_hook, *module._diffusers_hook._get_child_registries())
        for hook in registry.hooks.values()
        for attr in vars(hook).values()
        if isinstance(attr, StateManager)
        for name in attr._state_cache
    ]
    assert leftovers == []
