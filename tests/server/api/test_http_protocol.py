"""What the HTTP parser refuses before the app sees it gets the DashScope error body too."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from server.api.http_protocol import JsonErrorH11Protocol, http_protocol
from tests.support.uvicorn_server import exchange, serving

LONG_LINE = b"GET /api/v1/tasks/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
MALFORMED = [
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", id="bare-cr"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", id="nul"),
]


@pytest.mark.parametrize("protocol", [pytest.param(http_protocol(), id="default"), JsonErrorH11Protocol])
@pytest.mark.parametrize("request_bytes", MALFORMED)
def test_parser_refusals_are_json(
    app_factory: Callable[..., FastAPI], protocol: type, request_bytes: bytes
) -> None:
    with serving(app_factory(), http=protocol) as port:
        (answer,) = exchange(port, request_bytes)
    _assert_json_400(answer)


def test_overlong_request_line_is_json(app_factory: Callable[..., FastAPI]) -> None:
    # httptools (what `paddock serve` runs when installed) refuses a request line this long.
    with serving(app_factory(), http=http_protocol()) as port:
        (answer,) = exchange(port, LONG_LINE)
    _assert_json_400(answer)


def _assert_json_400(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert set(error) == {"request_id", "code", "message"} and error["code"] == "InvalidParameter"
