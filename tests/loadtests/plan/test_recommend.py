"""Recommendations on calibrations with known answers, and the report people read them from."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from loadtests.plan.calibration import Calibration, FacadeCapacity
from loadtests.plan.recommend import Plan, Slo, knee, recommend
from loadtests.plan.report import write_report
from tests.loadtests.plan.known import one_class_profile, one_class_variant


def test_slo_parsing() -> None:
    slo = Slo.parse("p95_e2e<=180, p50_wait<=30")
    assert slo.limits == (("p95", "e2e", 180.0), ("p50", "wait", 30.0))
    assert str(slo) == "p95_e2e<=180, p50_wait<=30"
    for bad in ("p95<=180", "p97_e2e<=1", "p95_e2e>=180", ""):
        with pytest.raises(ValueError, match=r"expected e\.g\."):
            Slo.parse(bad)


FACADE = FacadeCapacity(500.0, 200.0)


def _plan(rate: float, slo: str, facade: FacadeCapacity | None = FACADE) -> Plan:
    # One 10 s job per slot, one slot per worker: each worker finishes 0.1 jobs/s.
    calibration = Calibration((one_class_variant(10.0, slots=1),), facade)
    profile = one_class_profile()
    return recommend(calibration, profile, rate, Slo.parse(slo), gpu_hour_cost=2.0, jobs=200, replications=2)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return _plan(0.25, "p95_e2e<=40")


def test_the_cheapest_fleet_that_meets_the_slo(plan: Plan) -> None:
    assert plan.best is not None
    best = plan.best
    # 3 workers are needed to keep up (0.25 > 2 x 0.1); the SLO may ask for one more.
    assert best.fleet.workers in (3, 4) and best.meets
    assert best.prediction["e2e_s"]["p95"] <= 40
    assert best.gpu_hours_per_day == 24 * best.fleet.workers
    assert best.cost_per_video(0.25) == pytest.approx(best.cost_per_day / (0.25 * 86400))
    cheaper = plan.next_cheaper
    assert cheaper is not None and cheaper.cost_per_day < best.cost_per_day
    assert cheaper.failure is not None
    if cheaper.fleet.workers <= 2:
        assert cheaper.failure.startswith("saturated: 0.25 jobs/s offered, capacity")
    else:
        assert re.match(r"p95 e2e [0-9.]+ s > 40 s", cheaper.failure)
    assert plan.facade_needs()["replicas"] == 1
    facade_line = r"facade: [0-9.]+ polls/s at a [0-9.]+ s interval: 1 replica\(s\)"
    assert any(re.fullmatch(facade_line, line) for line in plan.lines())
    assert plan.seconds < 60


def test_without_a_facade_benchmark_the_plan_says_how_to_size_the_facade() -> None:
    lines = _plan(0.05, "p95_e2e<=40", facade=None).lines()
    assert any(x.endswith("; for the replicas it needs, calibrate with --facade-bench") for x in lines), lines


def test_an_slo_below_the_service_time_cannot_be_met() -> None:
    plan = _plan(0.05, "p95_e2e<=5")
    assert plan.best is None
    assert "no candidate meets the SLO" in plan.lines()


def test_knee_of_a_flat_then_steep_curve() -> None:
    curve = [
        {"rate_per_s": r, "e2e_s": {"p95": v}} for r, v in ((1, 10), (2, 10.5), (3, 11), (4, 13), (5, 40))
    ]
    assert knee(curve) == 4
    assert knee(curve[:2]) is None


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_is_one_self_contained_page_with_plots(plan: Plan, tmp_path: Path) -> None:
    measured = tmp_path / "run"
    measured.mkdir()
    (measured / "summary.json").write_text(
        '{"rate_per_s": 0.2, "saturated": false, "e2e_s": {"p50": 12.0, "p95": 25.0}}'
    )
    write_report(plan, tmp_path / "out" / "report.html", measured=[measured])
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images == ["report-latency.png", "report-cost.png"]
    for name in images:
        assert _png_size(tmp_path / "out" / name)[0] > 500
    assert plan.best is not None and plan.best.label() in page
    assert "fails:" in page  # the next cheaper candidate and its reason
