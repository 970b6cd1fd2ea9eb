"""The load test's DashScope pieces (pure), and the locustfile's shape (parsed, or imported when
Locust is installed: it is the `load` extra, not part of `make test`)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from loadtests.videojob import (
    CREATE_PATH,
    TASK_NAME,
    JobParams,
    create_body,
    create_headers,
    is_final,
    is_loopback_host,
    phase_times,
    task_output,
)

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"


def test_create_request_is_a_dashscope_async_create() -> None:
    headers = create_headers("sk-test")
    assert headers["Authorization"] == "Bearer sk-test"
    assert headers["X-DashScope-Async"] == "enable"
    assert CREATE_PATH == "/api/v1/services/aigc/video-generation/video-synthesis"
    body = json.loads(create_body(JobParams(), index=7))
    assert body["model"] == "happyhorse-1.0-t2v"
    assert body["input"]["prompt"]
    assert body["parameters"] == {"resolution": "720P", "duration": 3, "seed": 7}
    assert json.loads(create_body(JobParams(seed=1), index=7))["parameters"]["seed"] == 1


def test_task_output_and_final_states() -> None:
    assert task_output({"output": {"task_id": "t", "task_status": "RUNNING"}})["task_id"] == "t"
    assert task_output({"code": "InvalidApiKey"}) == {}
    assert task_output("not json") == {}
    assert not is_final("PENDING") and not is_final("RUNNING") and not is_final(None)
    assert all(is_final(s) for s in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"))


def test_phase_times_from_task_times() -> None:
    output = {
        "submit_time": "2026-01-02 10:00:00.000",
        "scheduled_time": "2026-01-02 10:00:12.500",
        "end_time": "2026-01-02 10:01:22.500",
    }
    phases = phase_times(output)
    assert phases.queue_wait_s == pytest.approx(12.5)
    assert phases.service_s == pytest.approx(70.0)
    assert phase_times({"submit_time": "bad"}).queue_wait_s is None


def test_loopback_guard() -> None:
    assert is_loopback_host("http://127.0.0.1:8000")
    assert is_loopback_host("http://localhost:8000")
    assert is_loopback_host("http://[::1]:8000")
    assert not is_loopback_host("http://10.1.2.3:8000")
    assert not is_loopback_host("http://paddock-load.invalid:8000")  # unresolvable: refused


def test_locustfile_shape() -> None:
    source = LOCUSTFILE.read_text()
    tree = ast.parse(source)
    classes = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    user = classes["VideoJobUser"]
    assert any(isinstance(b, ast.Name) and b.id in {"FastHttpUser", "HttpUser"} for b in user.bases)
    # One sample per job, polls grouped under one name, constant arrival pacing.
    assert 'request_type="JOB"' in source and 'name="video_e2e"' in source
    assert "events.request.fire" in source
    assert "name=TASK_NAME" in source and TASK_NAME == "/tasks/[id]"
    assert "constant_throughput(" in source
    assert "--max-jobs" in source and "--max-run-time" in source


def test_locustfile_imports_with_locust() -> None:
    pytest.importorskip("locust")
    import importlib.util

    spec = importlib.util.spec_from_file_location("paddock_locustfile", LOCUSTFILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.VideoJobUser.abstract is False
