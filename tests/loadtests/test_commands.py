"""`paddock loadtest` and `paddock plan` end to end against `paddock serve` with the tiny models:
short, bounded runs on loopback."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model.registry import default_registry
from tests.live_server import REPO, LiveServer, paddock_process

pytestmark = pytest.mark.slow

PROFILE = """
jobs:
  - {weight: 1, model: happyhorse-1.0-t2v, resolution: 720P, duration: 3}
  - {weight: 1, model: happyhorse-1.0-i2v, resolution: 720P, duration: 3, image: "synthetic:640x400"}
"""
ONE_CLASS = "jobs:\n  - {model: happyhorse-1.0-t2v, resolution: 720P, duration: 3}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"PADDOCK_MAX_CONCURRENT_JOBS": "2", "OMP_NUM_THREADS": "1"}
    with paddock_process(tmp_path_factory.mktemp("loadtest"), env=env) as live:
        yield live


def paddock(*args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PADDOCK_API_KEY", "DASHSCOPE_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_loadtest_sends_polls_downloads_and_summarises(server: LiveServer, tmp_path: Path) -> None:
    profile = write(tmp_path / "profile.yaml", PROFILE)
    out = tmp_path / "run"
    keys = [arg for key in server.keys for arg in ("--api-key", key)]
    done = paddock(
        "loadtest", "--base-url", server.base_url, *keys, "--profile", str(profile),
        "--rate", "2", "--jobs", "3", "--poll-interval", "0.2", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 sent, 3 succeeded, 0 failed" in done.stdout
    rows = list(csv.DictReader((out / "jobs.csv").open()))
    assert [r["status"] for r in rows] == ["SUCCEEDED"] * 3
    assert {r["tenant"] for r in rows} == {"0", "1"}  # spread over both keys
    for r in rows:
        assert int(r["video_bytes"]) > 1000 and int(r["polls"]) >= 1
        assert float(r["e2e_s"]) == pytest.approx(float(r["wait_s"]) + float(r["service_s"]), abs=0.002)
        key = server.keys[int(r["tenant"])]
        task = httpx.get(f"{server.api_url}/tasks/{r['task_id']}", headers={"Authorization": f"Bearer {key}"})
        assert task.json()["output"]["task_status"] == "SUCCEEDED"  # the server agrees
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["rate_per_s"], summary["jobs"], summary["succeeded"], summary["failed"]) == (2.0, 3, 3, 0)
    assert summary["saturated"] is False and summary["throughput_per_s"] > 0
    for name in ("wait_s", "service_s", "e2e_s"):
        assert set(summary[name]) == {"mean", "p50", "p95", "p99"}
    assert summary["service_s"]["p50"] > 0.1  # a real tiny model ran: decode, resample, encode
    assert json.loads((out / "run.json").read_text())["seed"] == 0


def _tasks_of(server: LiveServer, key: str) -> int:
    listed = httpx.get(f"{server.api_url}/tasks", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return int(listed.json()["total"])


def test_ctrl_c_stops_the_run_and_keeps_what_it_has(server: LiveServer, tmp_path: Path) -> None:
    profile = write(tmp_path / "profile.yaml", ONE_CLASS)
    out = tmp_path / "run"
    key = server.keys[0]
    before = _tasks_of(server, key)
    args = ["loadtest", "--base-url", server.base_url, "--api-key", key, "--profile", str(profile)]
    args += ["--rate", "0.5", "--jobs", "40", "--poll-interval", "0.2", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _tasks_of(server, key) == before and time.monotonic() < deadline:
        time.sleep(0.5)  # until the first job is in
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    rows = list(csv.DictReader((out / "jobs.csv").open()))
    assert 1 <= len(rows) < 40
    assert json.loads((out / "summary.json").read_text())["jobs"] == len(rows)
    assert "sent" in stderr  # the progress line


def test_loadtest_refuses_what_it_must_not_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loadtests.cli import loadtest_main

    monkeypatch.chdir(tmp_path)  # no ./paddock-data/api_key here
    for name in ("PADDOCK_API_KEY", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    profile = write(tmp_path / "profile.yaml", ONE_CLASS)
    common = ["--profile", str(profile), "--out", str(tmp_path / "out")]
    for argv, message in (
        (["--base-url", "http://10.1.2.3:8000", "--api-key", "k", *common], "not loopback"),
        (common, "no API key"),
        (
            ["--api-key", "k", "--profile", str(write(tmp_path / "bad.yaml", "jobs: 3")), "--out", "o"],
            "'jobs'",
        ),
        (["--api-key", "k", *common, "--schedule", "step"], "needs its rates"),
    ):
        with pytest.raises(SystemExit) as exited:
            loadtest_main(argv)
        assert message in str(exited.value)
    assert not (tmp_path / "out").exists()


def test_plan_calibrate_predict_recommend(server: LiveServer, tmp_path: Path) -> None:
    profile = write(tmp_path / "profile.yaml", ONE_CLASS)
    calibration = tmp_path / "calibration.json"
    target = ("--base-url", server.base_url, "--api-key", server.keys[1], "--profile", str(profile))
    short = ("--slots", "2", "--repeats", "1", "--burst-jobs", "2", "--bursts", "1")
    done = paddock("plan", "calibrate", *target, *short, "--out", str(calibration))
    assert done.returncode == 0, done.stderr
    measured = json.loads(calibration.read_text())["variants"][0]
    work = measured["classes"]["1.0-t2v-720P-3s"]
    # The served model's step count, read off the step histogram.
    assert work["steps"] == default_registry()["happyhorse-1.0-t2v"].num_inference_steps
    assert work["post_s"] > 0.1 and work["step_s"] > 0
    assert 0.25 <= measured["host_parallelism"] <= 64 and measured["max_slots"] == 2
    predicted = paddock(
        "plan", "predict", "--calibration", str(calibration), "--profile", str(profile),
        "--rate", "0.1", "--workers", "1", "--json",
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    prediction = json.loads(predicted.stdout)
    for key in ("rate_per_s", "workers", "slots", "utilisation", "max_rate_per_s", "saturated", "analytic"):
        assert key in prediction
    assert prediction["slots"] == 2 and prediction["e2e_s"]["p50"] >= work["post_s"]
    report = tmp_path / "report" / "plan.html"
    recommended = paddock(
        "plan", "recommend", "--calibration", str(calibration), "--profile", str(profile), "--rate", "0.05",
        "--slo", "p95_e2e<=600", "--gpu-hour-cost", "1.5", "--report", str(report), "--jobs", "60",
        "--replications", "2",
    )  # fmt: skip
    assert recommended.returncode == 0, recommended.stderr
    assert "cheapest: 1 x 1 GPU" in recommended.stdout
    assert report.is_file() and (report.parent / "plan-latency.png").is_file()


def test_plan_validate_starts_a_stack_and_compares(tmp_path: Path) -> None:
    profile = write(tmp_path / "profile.yaml", ONE_CLASS)
    from loadtests.plan.calibration import Calibration, ClassCalibration, Variant

    work = ClassCalibration(steps=3, step_s=0.01, vae_s=0.2, post_s=2.5)
    Calibration((Variant("given", {"1.0-t2v-720P-3s": work}, max_slots=2),)).save(tmp_path / "cal.json")
    out = tmp_path / "validation"
    done = paddock(
        "plan", "validate", "--profile", str(profile), "--calibration", str(tmp_path / "cal.json"),
        "--slots", "2", "--rates", "0.3", "--jobs", "2", "--repeats", "1", "--burst-jobs", "2",
        "--poll-interval", "0.2",
        "--replications", "2", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    table = (out / "validation.md").read_text()
    assert "| rate (jobs/s) | share of capacity | e2e p50 measured | predicted |" in table
    assert "maximum sustainable rate: predicted" in table
    assert "| rate (jobs/s) | share of capacity | e2e p50 measured | adjusted |" in table
    assert (
        "drift: 1.0-t2v-720P-3s alone took" in table and "before each load test and after the last" in table
    )
    assert "host parallelism: 1.00 at calibration; before each load test and after the last:" in table
    result = json.loads((out / "validation.json").read_text())
    before, after = result["machine"]["before_each_and_after"]  # around the one rate
    [point] = result["points"]
    assert point["slowdown"] == pytest.approx((before["lone_s"] + after["lone_s"]) / 2 / work.alone_s)
    assert point["parallelism"] == pytest.approx((before["parallelism"] + after["parallelism"]) / 2)
    assert 0.25 <= point["parallelism"] <= 64 and before["parallelism"] != 1.0  # fitted to a real burst
    assert "service over the model's, each job on its real neighbours" in table
    assert f"- {point['share']:.0%}: alone x" in table
    assert point["service"]["jobs_alone"] + point["service"]["jobs_shared"] == 2
    assert json.loads((out / "rate-1" / "summary.json").read_text())["succeeded"] == 2
    assert (out / "report.html").is_file() and (out / "validation.json").is_file()
