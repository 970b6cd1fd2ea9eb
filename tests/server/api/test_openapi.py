"""The OpenAPI description is complete and true: schemathesis fuzzes a live server from it.

Any 5xx, any status, header, content type or body the description does not allow, and any error
body without `request_id`, `code` and `message` fails the run (checks below, plus the hook in
tests/support/schemathesis_hooks.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live_server import paddock_process

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "ignored_auth",
        "dashscope_error_body",
    ]
)


def fuzz(base_url: str, key: str, examples: int, tmp: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(examples),
        # One worker: hypothesis describes strategies through `ast`, which is not thread-safe
        # on CPython 3.11 ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--seed",
        "8",
        "--report",
        "junit",
        "--report-dir",
        str(tmp / "report"),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks", "NO_COLOR": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def test_description_covers_the_dashscope_surface(tmp_path: Path) -> None:
    with paddock_process(tmp_path, command="api") as server:
        schema = httpx.get(f"{server.base_url}/openapi.json").json()
    ops = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert {
        ("post", "/api/v1/services/aigc/video-generation/video-synthesis"),
        ("post", "/api/v1/services/aigc/image2video/video-synthesis"),
        ("get", "/api/v1/tasks/{task_id}"),
        ("post", "/api/v1/tasks/{task_id}/cancel"),
        ("get", "/api/v1/tasks"),
        ("get", "/api/v1/uploads"),
        ("post", "/api/v1/uploads/oss"),
    } <= ops
    create = schema["paths"]["/api/v1/services/aigc/video-generation/video-synthesis"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "CreateTaskRequest"
    )
    assert {p["name"] for p in create["parameters"]} >= {"X-DashScope-Async", "X-DashScope-WorkSpace"}
    assert create["security"] == [{"DashScopeApiKey": []}]
    assert schema["components"]["securitySchemes"]["DashScopeApiKey"]["scheme"] == "bearer"
    listing = schema["paths"]["/api/v1/tasks"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"page_no", "page_size", "status", "start_time"}
    for item in schema["paths"].values():
        for operation in item.values():
            assert "422" not in operation["responses"]
    assert {"400", "401", "403", "429", "500"} <= set(create["responses"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "examples"), [("memory", 100), pytest.param("redis", 40, marks=pytest.mark.redis)]
)
def test_schemathesis_finds_nothing(
    backend: str, examples: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {"PADDOCK_MEDIA_TIMEOUT_S": "2"}
    if backend == "redis":
        env["PADDOCK_QUEUE_URL"] = request.getfixturevalue("redis_url")
    with paddock_process(tmp_path, command="api", env=env) as server:
        result = fuzz(server.base_url, server.keys[0], examples, tmp_path)
        log = server.log()
    assert result.returncode == 0, f"{result.stdout[-8000:]}\n{result.stderr[-2000:]}\n{log[-3000:]}"
