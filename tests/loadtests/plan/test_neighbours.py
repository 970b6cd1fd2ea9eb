"""The check of measured jobs against the sharing model on their real neighbours."""

from __future__ import annotations

import math

import pytest

from loadtests.plan.calibration import ClassCalibration, Variant
from loadtests.plan.neighbours import model_service, service_check
from loadtests.summary import JobRow


def test_a_job_slows_while_more_jobs_than_the_parallelism_share_the_host() -> None:
    assert model_service(2.0, 0.0, [], parallelism=1.0) == pytest.approx(2.0)
    assert model_service(2.0, 0.0, [(0.0, 10.0)], parallelism=1.0) == pytest.approx(4.0)
    assert model_service(2.0, 0.0, [(0.0, 10.0)], parallelism=2.0) == pytest.approx(2.0)
    # Half speed for the first second (0.5 s of work), then alone for the remaining 1.5 s.
    assert model_service(2.0, 0.0, [(-3.0, 1.0)], parallelism=1.0) == pytest.approx(2.5)
    # Two neighbours on 1.5 cores: a third of the speed until 3, then full speed.
    assert model_service(2.0, 0.0, [(0.0, 3.0), (0.0, 3.0)], parallelism=1.5) == pytest.approx(3.5)


def _row(index: int, start: float, end: float, status: str = "SUCCEEDED") -> JobRow:
    return JobRow(index, "t2v", status=status, submit_time=start, scheduled_time=start, end_time=end)


def test_jobs_alone_measure_the_machine_and_shared_ones_the_model() -> None:
    variant = Variant("cpu", {"t2v": ClassCalibration(steps=0, step_s=0.0, post_s=2.0)}, host_parallelism=1.0)
    rows = [
        _row(0, 0.0, 2.2),  # alone, 10 % slower than calibrated
        _row(1, 10.0, 14.0),  # two at once on one core: each twice as long, as the model says
        _row(2, 10.0, 14.0),
        _row(3, 10.0, 11.0, status="FAILED"),  # not counted, and no neighbour either
    ]
    check = service_check(rows, variant)
    assert check is not None
    assert (check.alone, check.jobs_alone) == (pytest.approx(1.1), 1)
    assert (check.shared, check.jobs_shared) == (pytest.approx(1.0), 2)
    assert check.describe() == "alone x1.10 (1 jobs), shared x1.00 (2 jobs)"


def test_no_check_off_the_host_or_without_finished_jobs() -> None:
    work = {"t2v": ClassCalibration(steps=4, step_s=0.5, post_s=1.0)}
    assert service_check([_row(0, 0.0, 3.0)], Variant("gpu", work, device_on_host=False)) is None
    assert service_check([_row(0, 0.0, 3.0, status="FAILED")], Variant("cpu", work)) is None
    only_shared = service_check([_row(0, 0.0, 6.0), _row(1, 0.0, 6.0)], Variant("cpu", work))
    assert (
        only_shared is not None and math.isnan(only_shared.alone) and only_shared.shared == pytest.approx(1.0)
    )
