"""Structured logs: JSON lines with request/task ids, and no API key, credential, signature or media."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.logging import MAX_FIELD_CHARS, configure_logging, redact, request_id_var, task_id_var
from tests.support.facade import ALICE, headers
from tests.support.worker_app import BROKEN, CREATE, data_uri_png, wait_final, worker_app


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """`configure_logging(json)` onto a StringIO; the loggers it touches are restored afterwards."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate, logging.getLogger(n).level)
        for n in names
    }
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    # Another test's uvicorn.Config may have set these to WARNING; `paddock serve` sets its own.
    for name in names[1:]:
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        yield stream
    finally:
        for name, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line must be one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_line_shape_and_context(log_stream: io.StringIO) -> None:
    log = logging.getLogger("paddock.test")
    token = task_id_var.set("task-123")
    try:
        log.info("hello %s", "world", extra={"attempt": 2})
    finally:
        task_id_var.reset(token)
    request_token = request_id_var.set("req-9")
    try:
        log.warning("no task here")
    finally:
        request_id_var.reset(request_token)
    first, second = lines(log_stream)
    assert set(first) >= {"time", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "paddock.test", "hello world")
    assert first["task_id"] == "task-123" and first["attempt"] == 2 and "request_id" not in first
    assert second["request_id"] == "req-9" and "task_id" not in second


def test_secrets_are_redacted(log_stream: io.StringIO) -> None:
    log = logging.getLogger("paddock.test")
    payload = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 8).decode()
    log.info("Authorization: Bearer sk-topsecret-0123 for %s", "sk-another-key9")
    log.info(
        "body", extra={"api_key": "anything", "media": f"data:image/png;base64,{payload}", "raw": b"\x00" * 9}
    )
    log.error("huge %s", "x" * (MAX_FIELD_CHARS * 3))
    # uvicorn's access line format, with a signed file URL.
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "1.2.3.4",
        "GET",
        "/files/results/t/1.mp4?expires=9&sig=deadbeef99",
        "1.1",
        200,
    )
    out = log_stream.getvalue()
    for secret in ("sk-topsecret", "sk-another", "deadbeef99", payload[:40], "anything"):
        assert secret not in out, secret
    auth, body, huge, access = lines(log_stream)
    assert "Bearer ***" in auth["message"] or "Authorization: ***" in auth["message"]
    assert body["api_key"] == "***" and body["raw"] == "<9 bytes>"
    assert body["media"] == "data:image/png;base64,<redacted>"
    assert len(huge["message"]) < MAX_FIELD_CHARS + 100
    assert "sig=***" in access["message"] and "expires=9" in access["message"]


def test_a_long_traceback_keeps_the_exception(log_stream: io.StringIO) -> None:
    cause: Exception | None = None
    for layer in range(100):  # a chain of causes: a traceback far longer than one log field
        try:
            raise ValueError(f"layer {layer}") from cause
        except ValueError as exc:
            cause = exc
    try:
        raise KeyError("the-missing-key sk-secret-in-message") from cause
    except KeyError:
        logging.getLogger("paddock.test").exception("unhandled error")
    (line,) = lines(log_stream)
    assert line["error_type"] == "KeyError"
    assert "the-missing-key" in line["error"] and "sk-secret" not in line["error"]
    assert line["exc"].rstrip().endswith("KeyError: 'the-missing-key sk-***'")
    assert line["exc"].startswith("<truncated ")


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "task-id abc desk-lamp https://example.com/a.png?w=1"
    assert redact(text) == text
    assert redact("key sk-alice") == "key sk-***"


async def test_request_and_job_logs_carry_ids_and_no_secrets(tmp_path: Path, log_stream: io.StringIO) -> None:
    image = data_uri_png()
    async with worker_app(tmp_path) as (client, gate):
        gate.set()
        body = {"model": BROKEN, "input": {"prompt": "p", "media": [{"type": "first_frame", "url": image}]}}
        body["parameters"] = {"resolution": "720P", "duration": 3}
        rsp = await client.post(CREATE, json=body, headers=headers())
        request_id, task_id = rsp.json()["request_id"], rsp.json()["output"]["task_id"]
        assert (await wait_final(client, task_id))["task_status"] == "FAILED"
    records = lines(log_stream)
    create_log = [r for r in records if r["logger"] == "paddock.http" and r.get("route") == CREATE]
    assert create_log and create_log[0]["request_id"] == request_id and create_log[0]["status"] == 200
    job_logs = [r for r in records if r["logger"] == "server.worker.runner" and "ready" not in r["message"]]
    assert {"job started", "job failed"} <= {r["message"] for r in job_logs}
    assert all(r["task_id"] == task_id for r in job_logs)
    assert any("exc" in r for r in job_logs)  # the traceback is kept, as one field
    out = log_stream.getvalue()
    submitted = [r for r in records if r["message"] == "task submitted"]
    assert submitted and submitted[0]["request_id"] == request_id
    assert ALICE not in out and "Bearer" not in out.replace("Bearer ***", "")
    assert image[30:90] not in out
