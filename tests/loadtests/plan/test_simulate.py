"""The simulation against queueing results it must reproduce, and paddock's own policies."""

from __future__ import annotations

import pytest

from loadtests.arrivals import Arrival, Schedule, plan_arrivals
from loadtests.plan.calibration import ClassCalibration, Variant
from loadtests.plan.simulate import Fleet, simulate
from tests.loadtests.plan.known import one_class_variant


def _mean_wait(fleet: Fleet, rate: float, jobs: int = 3000) -> float:
    rows = simulate(fleet, ["a"], plan_arrivals(Schedule(rate=rate), jobs=jobs, weights=[1.0], seed=11))
    return sum(r.wait_s for r in rows if r.wait_s is not None) / len(rows)


def test_one_slot_with_fixed_service_is_m_d_1() -> None:
    # Pollaczek–Khinchine for deterministic service: W_q = ρ S / (2 (1 − ρ)).
    fleet = Fleet(one_class_variant(1.0), workers=1, slots=1)
    for rho in (0.5, 0.7):
        assert _mean_wait(fleet, rho) == pytest.approx(rho / (2 * (1 - rho)), rel=0.15)


def test_workers_share_one_queue() -> None:
    # Three one-slot workers at ρ = 0.5 wait far less than one worker at the same ρ.
    one = _mean_wait(Fleet(one_class_variant(1.0), workers=1, slots=1), 0.5, jobs=1500)
    three = _mean_wait(Fleet(one_class_variant(1.0), workers=3, slots=1), 1.5, jobs=1500)
    assert three < one / 3


def test_slots_are_held_from_claim_to_commit() -> None:
    fleet = Fleet(one_class_variant(10.0), workers=1, slots=2)
    rows = simulate(fleet, ["a"], [Arrival(i, 0.0, 0) for i in range(3)])
    # The first two share a batch (t(2) = 20 s without batching gain); the third waits for a slot.
    assert [r.scheduled_time for r in rows] == pytest.approx([0.0, 0.0, 20.0])


def test_tenants_are_served_round_robin() -> None:
    """Tenant 0 queues ten jobs first; tenant 1's one job is claimed after one of them, not ten."""
    fleet = Fleet(one_class_variant(1.0), workers=1, slots=1, tenants=2)
    arrivals = [Arrival(2 * i, 0.0, 0) for i in range(10)] + [Arrival(1, 0.5, 0)]  # even index: tenant 0
    rows = {r.index: r for r in simulate(fleet, ["a"], sorted(arrivals, key=lambda a: a.offset_s))}
    order = sorted(rows.values(), key=lambda r: r.scheduled_time or 0.0)
    assert [r.tenant for r in order[:3]] == [0, 0, 1]


def test_jobs_of_one_group_share_a_forward() -> None:
    # Batching halves the per-job step cost (slope 0): two jobs together take one job's time.
    work = ClassCalibration(steps=10, step_s=1.0, batch_slope=0.0)
    fleet = Fleet(Variant("b", {"a": work}, device_on_host=False, max_slots=2), workers=1, slots=2)
    rows = simulate(fleet, ["a"], [Arrival(0, 0.0, 0), Arrival(1, 0.0, 0)])
    assert [r.end_time for r in rows] == pytest.approx([10.0, 10.0])
    linear = Fleet(Variant("l", {"a": ClassCalibration(steps=10, step_s=1.0)}, device_on_host=False), 1, 2)
    assert [r.end_time for r in simulate(linear, ["a"], [Arrival(0, 0.0, 0), Arrival(1, 0.0, 0)])] == [
        20.0,
        20.0,
    ]


def test_post_denoise_work_competes_for_the_cores() -> None:
    # Two jobs whose 4 s encode runs on one core finish at 8 s; with two cores at 4 s.
    work = ClassCalibration(steps=0, step_s=0.0, post_s=4.0)
    for cores, end in ((1.0, 8.0), (2.0, 4.0)):
        fleet = Fleet(Variant("c", {"a": work}, host_parallelism=cores), workers=1, slots=2)
        rows = simulate(fleet, ["a"], [Arrival(0, 0.0, 0), Arrival(1, 0.0, 0)])
        assert [r.end_time for r in rows] == pytest.approx([end, end])


def test_an_uncalibrated_class_is_refused() -> None:
    with pytest.raises(ValueError, match="no calibration for b"):
        simulate(Fleet(one_class_variant(), 1, 1), ["a", "b"], [])
