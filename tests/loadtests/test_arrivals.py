"""Open-model schedules: the rate offered is the rate asked for, and a seed replays exactly."""

from __future__ import annotations

import pytest

from loadtests.arrivals import Schedule, plan_arrivals


def test_poisson_rate_and_exponential_gaps() -> None:
    arrivals = plan_arrivals(Schedule(rate=2.0), jobs=4000, weights=[1.0], seed=3)
    assert len(arrivals) == 4000
    offsets = [a.offset_s for a in arrivals]
    assert offsets == sorted(offsets)
    assert 4000 / offsets[-1] == pytest.approx(2.0, rel=0.05)
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    mean = sum(gaps) / len(gaps)
    variance = sum((g - mean) ** 2 for g in gaps) / len(gaps)
    assert variance / mean**2 == pytest.approx(1.0, abs=0.1)  # exponential: CV² = 1


def test_classes_follow_the_weights_and_a_seed_replays() -> None:
    arrivals = plan_arrivals(Schedule(rate=1.0), jobs=3000, weights=[3.0, 1.0, 0.0], seed=1)
    counts = [sum(1 for a in arrivals if a.job_class == c) for c in range(3)]
    assert counts[0] / counts[1] == pytest.approx(3.0, rel=0.15)
    assert counts[2] == 0
    assert arrivals == plan_arrivals(Schedule(rate=1.0), jobs=3000, weights=[3.0, 1.0, 0.0], seed=1)
    assert arrivals != plan_arrivals(Schedule(rate=1.0), jobs=3000, weights=[3.0, 1.0, 0.0], seed=2)


def test_step_and_ramp_schedules() -> None:
    step = Schedule(kind="step", rates=(1.0, 4.0), step_s=500.0)
    arrivals = plan_arrivals(step, jobs=100_000, weights=[1.0], seed=0, max_duration_s=1000.0)
    first = sum(1 for a in arrivals if a.offset_s < 500)
    assert first / 500 == pytest.approx(1.0, rel=0.1)
    assert (len(arrivals) - first) / 500 == pytest.approx(4.0, rel=0.1)
    assert step.mean_rate(1000.0) == pytest.approx(2.5)
    ramp = Schedule(kind="ramp", rate=4.0, ramp_from=0.0, ramp_s=1000.0)
    assert ramp.rate_at(250.0) == pytest.approx(1.0) and ramp.rate_at(5000.0) == 4.0
    arrivals = plan_arrivals(ramp, jobs=100_000, weights=[1.0], seed=0, max_duration_s=1000.0)
    assert len(arrivals) / 1000 == pytest.approx(2.0, rel=0.1)  # the mean of a 0 → 4 ramp


def test_bounds_and_bad_schedules() -> None:
    assert all(
        a.offset_s <= 10 for a in plan_arrivals(Schedule(rate=5.0), jobs=1000, weights=[1], max_duration_s=10)
    )
    with pytest.raises(ValueError, match="schedule must be one of"):
        Schedule(kind="burst")
    with pytest.raises(ValueError, match="needs its rates"):
        Schedule(kind="step")
    with pytest.raises(ValueError, match="non-negative"):
        Schedule(rate=-1.0)
    with pytest.raises(ValueError):
        plan_arrivals(Schedule(rate=1.0), jobs=3, weights=[0.0])
