"""Request-scoped helpers every area uses: authentication, the request id, the workspace header.

`create_app` puts exactly one object per area on `app.state`: `tasks` (TaskService), `uploads`
(UploadService), `keys` (KeyRing, read here), `files` (the local store it serves, or None),
`health` (Readiness), `metrics` (MetricsEndpoint), `web` (the playground's Console), `videos`
(the OpenAI-style surface's VideosService) and `webhooks` (the delivery loop); each area's
routes reach their own object through a getter beside them.
"""

from __future__ import annotations

from typing import cast

from fastapi import Request
from starlette.types import Scope

from server.api.middleware import scope_request_id
from server.errors import InvalidApiKey, InvalidParameter
from server.keys import KeyRing, Tenant


def request_id(request: Request) -> str:
    """The id of this request, made once by `middleware.ObservabilityMiddleware`."""
    return scope_request_id(request.scope)


def authenticate(request: Request) -> Tenant:
    """The tenant of the `Authorization: Bearer <key>` header (API.md §4 401 rows)."""
    header = scope_header(request.scope, b"authorization")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if not header or scheme.lower() != "bearer" or not key:
        raise InvalidApiKey("No API-key provided.")
    tenant = cast(KeyRing, request.app.state.keys).lookup(key)
    if tenant is None:
        raise InvalidApiKey("Invalid API-key provided.")
    return tenant


def scope_header(scope: Scope, name: bytes) -> str:
    """A request header straight from the ASGI scope (names arrive lower-cased), without building
    Starlette's `Headers` for it: authentication runs on every request."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return ""


def workspace(request: Request) -> str | None:
    """`X-DashScope-WorkSpace`, recorded on tasks and used to filter lists."""
    value = request.headers.get("x-dashscope-workspace", "").strip()
    return value or None


MAX_IDEMPOTENCY_KEY_CHARS = 255


def idempotency_key(request: Request) -> str | None:
    """The `Idempotency-Key` header of a create: 1 to 255 printable ASCII characters."""
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    value = value.strip()
    if not 0 < len(value) <= MAX_IDEMPOTENCY_KEY_CHARS or not value.isascii() or not value.isprintable():
        raise InvalidParameter(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters.",
            param="Idempotency-Key",
        )
    return value
