"""Processor sharing: activities slow each other down instead of queueing."""

from __future__ import annotations

import pytest
import simpy

from loadtests.plan.processor import SharedProcessor


def _finish_times(capacity: float, jobs: list[tuple[float, float]]) -> list[float]:
    """(start, seconds alone) per activity -> when each finished."""
    env = simpy.Environment()
    cpu = SharedProcessor(env, capacity)
    done = [0.0] * len(jobs)

    def activity(i: int, start: float, work: float):  # type: ignore[no-untyped-def]
        yield env.timeout(start)
        yield cpu.run(work)
        done[i] = env.now

    for i, (start, work) in enumerate(jobs):
        env.process(activity(i, start, work))
    env.run()
    return done


def test_two_activities_share_one_core() -> None:
    assert _finish_times(1.0, [(0, 1.0), (0, 1.0)]) == pytest.approx([2.0, 2.0])


def test_enough_cores_run_everything_at_full_speed() -> None:
    assert _finish_times(2.0, [(0, 1.0), (0, 1.0)]) == pytest.approx([1.0, 1.0])
    assert _finish_times(2.0, [(0, 1.0), (0, 1.0), (0, 1.0)]) == pytest.approx([1.5, 1.5, 1.5])


def test_a_late_arrival_slows_the_one_running() -> None:
    # A runs alone for 0.5 s (1.5 s left), then both at half speed: B's 1 s takes 2 s (ends at
    # 2.5), A has 0.5 s left and finishes alone at 3.0.
    assert _finish_times(1.0, [(0, 2.0), (0.5, 1.0)]) == pytest.approx([3.0, 2.5])


def test_zero_work_is_done_at_once_and_capacity_must_be_positive() -> None:
    assert _finish_times(1.0, [(0.25, 0.0)]) == [0.25]
    with pytest.raises(ValueError):
        SharedProcessor(simpy.Environment(), 0.0)
