"""The analytic screen: Erlang C on the worked example of ray_serve.md §6.2, and the bottleneck bound."""

from __future__ import annotations

import math

import pytest

from loadtests.plan.analytic import bottleneck_rate, erlang_c, mgc, screen
from loadtests.plan.calibration import ClassCalibration, Variant
from tests.loadtests.plan.known import one_class_variant

S = 70.0  # seconds per video on one 4-GPU replica
LAM = 2.0 / 60.0  # 2 jobs per minute
# c: (ρ, P(wait), W_q seconds) from the notes' table, rounded as printed there.
WORKED_EXAMPLE = {3: (0.78, 0.61, 64), 4: (0.58, 0.27, 11), 5: (0.47, 0.10, 3)}


@pytest.mark.parametrize("c", sorted(WORKED_EXAMPLE))
def test_worked_example(c: int) -> None:
    rho, p_wait, wq = WORKED_EXAMPLE[c]
    q = mgc(S, LAM, c, cs2=1.0)
    assert (q.rho, q.p_wait, q.wq_s) == (
        pytest.approx(rho, abs=0.005),
        pytest.approx(p_wait, abs=0.005),
        pytest.approx(wq, abs=0.5),
    )


def test_erlang_c_edge_cases_and_allen_cunneen() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = ρ
    assert erlang_c(4, 0.0) == 0.0
    assert erlang_c(3, 3.0) == 1.0
    assert 0.0 < erlang_c(500, 480.0) < 1.0  # the Erlang B recursion avoids factorial overflow
    with pytest.raises(ValueError):
        erlang_c(0, 1.0)
    assert mgc(S, LAM, 3, cs2=0.0).wq_s == pytest.approx(mgc(S, LAM, 3, cs2=1.0).wq_s / 2)  # M/D/c
    assert math.isinf(mgc(S, LAM, 2).wq_s) and not mgc(S, LAM, 2).stable


def test_bottleneck_is_the_tightest_resource() -> None:
    # Slots: 4 jobs of 10 s at once -> 0.4/s. A device shared at full batch: 1 step of 10 s per
    # job, no batching gain -> 0.1/s. The device is the bottleneck.
    variant = one_class_variant(10.0, slots=4)
    assert bottleneck_rate(variant, ["a"], [1.0], slots=4) == pytest.approx(0.1)
    batching = one_class_variant(10.0, slots=4, batch_slope=0.0)
    assert bottleneck_rate(batching, ["a"], [1.0], slots=4) == pytest.approx(0.4)  # now the slots
    host = Variant("h", {"a": ClassCalibration(steps=0, step_s=0.0, post_s=2.0)}, host_parallelism=1.5)
    assert bottleneck_rate(host, ["a"], [1.0], slots=4) == pytest.approx(0.75)  # 1.5 cores / 2 s


def test_screen_reports_waits_and_saturation() -> None:
    variant = one_class_variant(10.0, slots=1)
    calm, over = screen(variant, ["a"], [1.0], 0.05, 1, 1), screen(variant, ["a"], [1.0], 0.2, 1, 1)
    assert calm["max_rate_per_s"] == pytest.approx(0.1) and calm["utilisation"] == pytest.approx(0.5)
    assert calm["wait_s"]["mean"] == pytest.approx(5.0)  # M/D/1 (cs² = 0): ρS / (2(1 − ρ))
    assert not calm["saturated"] and over["saturated"]
