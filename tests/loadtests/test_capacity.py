"""capacity.py reproduces the worked example of ray_serve.md §6.2 and recommends like the notes."""

from __future__ import annotations

import math

import pytest

from loadtests.capacity import analyse, erlang_c, main, recommend

S = 70.0  # seconds per video on one 4-GPU replica
LAM = 2.0 / 60.0  # 2 jobs per minute

# c: (ρ, P(wait), W_q seconds, W seconds) from the notes' table, rounded as printed there.
WORKED_EXAMPLE = {3: (0.78, 0.61, 64, 134), 4: (0.58, 0.27, 11, 81), 5: (0.47, 0.10, 3, 73)}


@pytest.mark.parametrize("c", sorted(WORKED_EXAMPLE))
def test_worked_example(c: int) -> None:
    rho, p_wait, wq, w = WORKED_EXAMPLE[c]
    stats = analyse(S, LAM, c)
    assert stats.rho == pytest.approx(rho, abs=0.005)
    assert stats.p_wait == pytest.approx(p_wait, abs=0.005)
    assert stats.wq_s == pytest.approx(wq, abs=0.5)
    assert stats.w_s == pytest.approx(w, abs=0.5)


def test_erlang_c_edge_cases() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = ρ
    assert erlang_c(4, 0.0) == 0.0
    assert erlang_c(3, 3.0) == 1.0  # saturated
    # Large c stays finite (the Erlang B recursion avoids factorial overflow).
    assert 0.0 < erlang_c(500, 480.0) < 1.0
    with pytest.raises(ValueError):
        erlang_c(0, 1.0)


def test_little_and_throughput_bound() -> None:
    stats = analyse(S, LAM, 4)
    assert stats.in_system == pytest.approx(LAM * stats.w_s)
    assert stats.max_per_min == pytest.approx(60 * 4 / S)


def test_deterministic_service_halves_the_wait() -> None:
    mmc, mdc = analyse(S, LAM, 3, cs2=1.0), analyse(S, LAM, 3, cs2=0.0)
    assert mdc.wq_s == pytest.approx(mmc.wq_s / 2)
    assert mdc.wq_mmc_s == pytest.approx(mmc.wq_s)


def test_unstable_queue_has_infinite_wait() -> None:
    stats = analyse(S, LAM, 2)  # a = 2.33 > 2
    assert not stats.stable
    assert math.isinf(stats.w_s)


def test_recommendation_matches_the_notes() -> None:
    best = recommend(S, LAM, slo_s=90)
    assert best is not None and best.replicas == 4
    assert recommend(S, LAM, slo_s=75).replicas == 5  # type: ignore[union-attr]
    # p95 of the queue wait is stricter than its mean.
    p95 = recommend(S, LAM, slo_s=30, metric="p95_wq")
    mean = recommend(S, LAM, slo_s=30, metric="mean_wq")
    assert p95 is not None and mean is not None and p95.replicas >= mean.replicas
    assert recommend(S, LAM, slo_s=60, max_replicas=10) is None  # W never drops below S


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--gpu-seconds", "280", "--gpus-per-replica", "4", "--rate", "2", "--slo-s", "90"]) == 0
    out = capsys.readouterr().out
    assert "a = λS = 2.33" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert rows["3"][1:4] == ["12", "0.78", "0.61"]
    assert rows["4"][1:4] == ["16", "0.58", "0.27"]
    assert rows["5"][1:4] == ["20", "0.47", "0.10"]
    assert "recommend c = 4 (16 GPUs)" in out


def test_cli_reports_an_unreachable_slo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--service-s", "70", "--rate", "2", "--slo-s", "10"]) == 1
    assert "no replica count" in capsys.readouterr().out
