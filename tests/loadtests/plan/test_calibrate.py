"""Calibration pieces that need no stack: the parallelism fit, batch scaling, GPU benchmark input,
Prometheus readings and the calibration file."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from loadtests.arrivals import Arrival
from loadtests.plan.calibrate import (
    batch_slope,
    fit_parallelism,
    from_bench,
    makespan,
    parse_bench,
    real_tokens,
    slowdown,
)
from loadtests.plan.calibration import Calibration, ClassCalibration, FacadeCapacity, Variant
from loadtests.plan.scrape import parse
from loadtests.plan.simulate import Fleet, simulate
from loadtests.profile import JobClass, Profile

# What benchmarks/real_size.py printed on one H200.
BENCH_OUTPUT = """real-size Wan 14B bf16, 720p x 81 frames (75600 tokens), CFG batched (B=2)
gpu: NVIDIA H200  peak memory: 42.7 GiB
seconds per step: 25.208
MFU: 52.5%
seconds per VAE decode: 6.573
"""


def test_the_host_parallelism_is_recovered_from_a_burst() -> None:
    work = ClassCalibration(steps=2, step_s=0.1, vae_s=0.3, pre_s=0.1, post_s=3.0, misc_s=0.05)
    truth = Variant("t", {"a": work, "b": replace(work, post_s=1.5)}, host_parallelism=1.7, max_slots=4)
    burst = simulate(Fleet(truth, 1, 4), ["a", "b"], [Arrival(i, 0.01 * i, i % 2) for i in range(12)])
    fitted = fit_parallelism(replace(truth, host_parallelism=1.0), 4, 1, ["a", "b"], burst)
    assert fitted == pytest.approx(1.7, rel=0.01)
    assert makespan(burst) > 0


def test_batch_slope() -> None:
    assert batch_slope(0.15, 2.0, 0.1) == pytest.approx(0.5)  # t(2) = 1.5 t(1)
    assert batch_slope(0.1, 1.0, 0.1) == 1.0  # never batched: assume no gain
    assert batch_slope(0.5, 2.0, 0.1) == 1.0  # clamped


def test_gpu_variant_from_the_real_size_benchmark() -> None:
    bench = parse_bench(BENCH_OUTPUT)
    assert (bench.tokens, bench.step_s, bench.vae_s) == (75600, 25.208, 6.573)
    assert bench.vae_s_per_token == pytest.approx(6.573 / 75600)
    without_decode = parse_bench(BENCH_OUTPUT.replace("seconds per VAE decode: 6.573\n", ""))
    assert (without_decode.step_s, without_decode.vae_s_per_token) == (25.208, None)
    with pytest.raises(ValueError, match="real-size"):
        parse_bench("throughput ratio (engine/stock): 2.42")
    i2v = JobClass(name="i2v", model="happyhorse-1.0-i2v", resolution="720P", duration=5)
    big = JobClass(name="big", model="happyhorse-1.0-t2v", resolution="1080P", duration=10)
    assert real_tokens(i2v) == 21 * 3600  # 21 latent frames x (1280/16) x (720/16)
    host = ClassCalibration(steps=3, step_s=0.01, vae_s=0.3, pre_s=0.2, post_s=4.0, misc_s=0.1)
    base = Variant("cpu", {"i2v": host, "big": host}, host_parallelism=0.9)
    profile = Profile((i2v, big))
    per_token = bench.vae_s_per_token
    gpu = from_bench(bench, base, profile, steps=40, host_parallelism=16.0, vae_s_per_token=per_token)
    assert not gpu.device_on_host and gpu.host_parallelism == 16.0
    assert gpu.classes["i2v"].step_s == pytest.approx(25.208)  # the bench ran this very size
    assert gpu.classes["i2v"].vae_s == pytest.approx(6.573)
    assert gpu.classes["big"].step_s > 4 * gpu.classes["i2v"].step_s  # 2.25x the pixels, 2x the frames
    assert (gpu.classes["i2v"].steps, gpu.classes["i2v"].post_s) == (40, 4.0)  # host work carried over


def test_prometheus_readings_and_their_difference() -> None:
    before = parse(
        'paddock_job_phase_seconds_sum{model="m",phase="encode"} 2.0\n'
        'paddock_job_phase_seconds_count{model="m",phase="encode"} 1.0\n'
        'paddock_step_duration_seconds_sum{model="wan-ti2v"} 0.5\n'
        'paddock_step_duration_seconds_count{model="wan-ti2v"} 10.0\n'
    )
    after = parse(
        'paddock_job_phase_seconds_sum{model="m",phase="encode"} 5.0\n'
        'paddock_job_phase_seconds_count{model="m",phase="encode"} 2.0\n'
        'paddock_step_duration_seconds_sum{model="wan-ti2v"} 0.8\n'
        'paddock_step_duration_seconds_count{model="wan-ti2v"} 13.0\n'
    )
    delta = after.minus(before)
    assert delta.total("paddock_job_phase_seconds_sum", phase="encode") == 3.0
    assert delta.total("paddock_job_phase_seconds_sum", phase="upload") == 0.0
    assert delta.mean("paddock_step_duration_seconds") == pytest.approx(0.1)
    assert delta.mean("paddock_batch_size") is None


def test_calibration_files_round_trip_and_merge(tmp_path: Path) -> None:
    work = ClassCalibration(steps=3, step_s=0.01)
    first = Calibration((Variant("cpu", {"a": work}),))
    second = Calibration((Variant("gpu", {"a": work}, device_on_host=False),), FacadeCapacity(900.0, 400.0))
    first.save(tmp_path / "a.json")
    second.save(tmp_path / "b.json")
    merged = Calibration.load_all([tmp_path / "a.json", tmp_path / "b.json"])
    assert [v.name for v in merged.variants] == ["cpu", "gpu"]
    assert merged.facade == FacadeCapacity(900.0, 400.0)
    assert merged.variant("gpu") == second.variants[0]
    with pytest.raises(KeyError, match="no variant"):
        merged.variant("tpu")
    (tmp_path / "old.json").write_text('{"version": 0, "variants": []}')
    with pytest.raises(ValueError, match="version"):
        Calibration.load(tmp_path / "old.json")


def test_the_slowdown_is_the_mean_of_the_lone_times_measured() -> None:
    assert slowdown([2.2, 2.6], calibrated=2.0) == pytest.approx(1.2)
    assert slowdown([math.nan, 2.5], calibrated=2.0) == pytest.approx(1.25)
    assert slowdown([math.nan, math.nan], calibrated=2.0) == 1.0
