"""The upload form is checked as it streams: a forged form is refused before its file is read,
an oversized file is cut off at the policy's limit, and nothing is left spooled."""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.support.facade import ALICE
from tests.support.uvicorn_server import serving

BOUNDARY = "paddockform"
MB = 1024 * 1024


def _form_head(fields: dict[str, str]) -> bytes:
    parts = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    parts += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    return parts.encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _start_chunked_upload(port: int, head: bytes, file_bytes: int) -> socket.socket:
    """POST the form head and `file_bytes` of file, chunked, and leave the body unfinished: an
    answer can then only come from a server that decided without the rest of the file."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(
        b"POST /api/v1/uploads/oss HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        + f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n".encode()
        + _chunk(head)
    )
    for _ in range(file_bytes // (256 * 1024)):
        conn.sendall(_chunk(b"\0" * (256 * 1024)))
    return conn


def _answer(conn: socket.socket) -> tuple[int, dict[str, str]]:
    conn.settimeout(10)
    reader = conn.makefile("rb")
    status = int(reader.readline().split()[1])
    length = 0
    for line in iter(reader.readline, b"\r\n"):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, json.loads(reader.read(length))


def _policy(base_url: str) -> dict[str, str]:
    response = httpx.get(
        f"{base_url}/api/v1/uploads",
        params={"action": "getPolicy", "model": "happyhorse-1.0-i2v"},
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    info = response.json()["data"]
    return {
        "OSSAccessKeyId": info["oss_access_key_id"],
        "Signature": info["signature"],
        "policy": info["policy"],
        "key": info["upload_dir"] + "/a.png",
        "success_action_status": "200",
    }


def _spooled() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("paddock-upload-*"))


def test_forged_upload_is_refused_before_the_file_is_read(app_factory: Callable[..., FastAPI]) -> None:
    before = set(_spooled())
    with serving(app_factory()) as port:
        fields = _policy(f"http://127.0.0.1:{port}") | {"Signature": "forged"}
        with _start_chunked_upload(port, _form_head(fields), MB) as conn:
            status, body = _answer(conn)
    assert status == 403 and body["code"] == "AccessDenied" and "signature" in body["message"]
    assert set(_spooled()) == before


@pytest.mark.parametrize("missing", ["Signature", "policy"])
def test_fields_after_the_file_are_too_late(app_factory: Callable[..., FastAPI], missing: str) -> None:
    with serving(app_factory()) as port:
        fields = _policy(f"http://127.0.0.1:{port}")
        del fields[missing]
        with _start_chunked_upload(port, _form_head(fields), MB) as conn:
            status, body = _answer(conn)
    assert status == 400 and missing in body["message"]


def test_oversized_file_is_cut_off_at_the_policy_limit(app_factory: Callable[..., FastAPI]) -> None:
    before = set(_spooled())
    with serving(app_factory(max_upload_mb=1)) as port:
        head = _form_head(_policy(f"http://127.0.0.1:{port}"))
        with _start_chunked_upload(port, head, 2 * MB) as conn:  # past the 1 MB limit, unfinished
            status, body = _answer(conn)
    # The policy's limit (400) or the route's body limit just above it (413): both cut it off.
    assert status in (400, 413) and body["code"] == "InvalidParameter"
    assert "too large" in body["message"] or "larger than" in body["message"]
    assert set(_spooled()) == before
