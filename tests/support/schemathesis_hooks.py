"""Schemathesis hooks for the fuzz run of tests/server/api/test_openapi.py (SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def dashscope_error_body(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every error answer is the one shape of its surface: DashScope's `request_id`, `code` and
    `message`, or under /v1/ OpenAI's `{"error": {"message", "type", "param", "code"}}`."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} answer is not JSON: {response.text[:200]!r}") from None
    if case.path.startswith("/v1/"):
        error = body.get("error") if isinstance(body, dict) else None
        missing = {"message", "type", "param", "code"} - set(error if isinstance(error, dict) else ())
        if set(body) != {"error"} or missing:
            raise AssertionError(f"{response.status_code} OpenAI error body: {body!r}")
        return True
    missing = {"request_id", "code", "message"} - set(body if isinstance(body, dict) else ())
    if missing:
        raise AssertionError(f"{response.status_code} error body lacks {sorted(missing)}: {body!r}")
    return True
