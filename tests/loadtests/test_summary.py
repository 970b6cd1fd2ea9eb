"""Rows, percentiles, throughput and saturation: the numbers both the load test and the planner report."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.summary import JobRow, is_saturated, percentile, read_csv, summarise, throughput, write_csv


def _rows(arrival_gap: float, service_gap: float, jobs: int = 200, service_s: float = 1.0) -> list[JobRow]:
    """One server finishing a job every `service_gap` s (FIFO), jobs arriving every `arrival_gap` s."""
    rows, free_at = [], 0.0
    for i in range(jobs):
        submit = 1000.0 + i * arrival_gap
        start = max(submit, free_at)
        free_at = start + max(service_gap, 0.0)
        end = start + service_s if service_gap == 0 else free_at
        rows.append(
            JobRow(
                i,
                "a",
                0,
                i * arrival_gap,
                status="SUCCEEDED",
                submit_time=submit,
                scheduled_time=start,
                end_time=end,
            )
        )
    return rows


def test_derived_times_and_csv_round_trip(tmp_path: Path) -> None:
    row = JobRow(
        0,
        "a",
        1,
        0.5,
        send_delay_s=0.01,
        http_status=200,
        task_id="t",
        status="SUCCEEDED",
        submit_time=10.0,
        scheduled_time=12.5,
        end_time=20.0,
        polls=3,
        video_bytes=42,
    )
    assert (row.wait_s, row.service_s, row.e2e_s) == (2.5, 7.5, 10.0)
    rejected = JobRow(1, "b", status="REJECTED", code="Throttling", http_status=429)
    assert rejected.e2e_s is None
    write_csv([row, rejected], tmp_path / "jobs.csv")
    assert read_csv(tmp_path / "jobs.csv") == [row, rejected]
    header = (tmp_path / "jobs.csv").read_text().splitlines()[0]
    assert header.endswith("wait_s,service_s,e2e_s")


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN


def test_stable_run_keeps_up_and_is_not_saturated() -> None:
    rows = _rows(arrival_gap=1.0, service_gap=0.8)
    assert throughput(rows) == pytest.approx(1.0, rel=0.02)
    assert not is_saturated(rows)


def test_overloaded_run_is_saturated_and_reports_its_capacity() -> None:
    rows = _rows(arrival_gap=0.5, service_gap=0.8)  # arrivals at 2/s, completions at 1.25/s
    assert throughput(rows) == pytest.approx(1.25, rel=0.02)
    assert is_saturated(rows)


def test_a_short_noisy_run_is_not_called_saturated() -> None:
    assert not is_saturated(_rows(arrival_gap=0.5, service_gap=0.8, jobs=6))


def test_summary_object(tmp_path: Path) -> None:
    rows = _rows(arrival_gap=1.0, service_gap=0.0, jobs=20, service_s=3.0)
    rows.append(
        JobRow(
            20,
            "b",
            status="FAILED",
            code="InternalError.Algo",
            submit_time=1030.0,
            scheduled_time=1030.0,
            end_time=1031.0,
        )
    )
    summary = summarise(rows, rate_per_s=1.0)
    assert set(summary) >= {
        "rate_per_s",
        "jobs",
        "succeeded",
        "failed",
        "throughput_per_s",
        "saturated",
        "wait_s",
        "service_s",
        "e2e_s",
    }
    assert (summary["jobs"], summary["succeeded"], summary["failed"]) == (21, 20, 1)
    assert summary["e2e_s"]["p50"] == pytest.approx(3.0)
    assert set(summary["wait_s"]) == {"mean", "p50", "p95", "p99"}
    assert summary["by_class"]["b"] == {
        "jobs": 1,
        "succeeded": 0,
        "e2e_s": summary["by_class"]["b"]["e2e_s"],
        "service_s": summary["by_class"]["b"]["service_s"],
    }


def test_throughput_counts_jobs_that_finish_together_whole() -> None:
    # Four workers in step: four completions every 10 s. The rate is 0.4/s, not 0.4 x (n-1)/n.
    rows = [
        JobRow(i, "a", status="SUCCEEDED", submit_time=0.0, scheduled_time=0.0, end_time=10.0 * (1 + i // 4))
        for i in range(40)
    ]
    assert throughput(rows) == pytest.approx(0.4)
