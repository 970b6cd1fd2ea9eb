"""Which error body a request gets: DashScope's `{"request_id", "code", "message"}` (API.md §4)
everywhere, except under `/v1/`, the OpenAI-style Videos surface, where it is OpenAI's
`{"error": {"message", "type", "param", "code"}}`. Used by every place that answers an error:
the app's exception handlers and the middleware (body limit, last-resort 500)."""

from __future__ import annotations

from typing import Any

from server.api.schemas import error_body
from server.errors import DashScopeError

OPENAI_PREFIX = "/v1/"

# OpenAI's error `type` by status; `code` carries paddock's own code (InvalidParameter, ...).
_OPENAI_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "rate_limit_error"}


def is_openai_path(path: str) -> bool:
    """True for the OpenAI-style surface."""
    return path.startswith(OPENAI_PREFIX)


def error_headers(error: DashScopeError) -> dict[str, str]:
    """Headers every answer of `error` carries, whoever answers it."""
    if error.status == 409:
        # The openai SDK retries a 409 (a lock timeout to OpenAI); a reused key never succeeds.
        return {"x-should-retry": "false"}
    return {}


def error_payload(path: str, request_id: str, error: DashScopeError) -> dict[str, Any]:
    """The body of `error` for a request to `path`."""
    if not is_openai_path(path):
        return error_body(request_id, error.code, error.message)
    kind = "server_error" if error.status >= 500 else _OPENAI_TYPES.get(error.status, "invalid_request_error")
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}
