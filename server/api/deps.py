"""Request-scoped helpers: the services on `app.state`, authentication, request ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from server.api.errors import InvalidApiKey
from server.api.middleware import scope_request_id
from server.keys import KeyRing, Tenant

if TYPE_CHECKING:
    from model.registry import ModelSpec
    from server.api.uploads import UploadService
    from server.config import Settings
    from server.jobs.base import TaskQueue
    from server.media import MediaFetcher
    from server.signing import Signer
    from server.storage.base import ObjectStore


@dataclass
class Services:
    """Everything a route needs, built once by `create_app` and kept on `app.state.services`."""

    settings: Settings
    queue: TaskQueue
    store: ObjectStore
    registry: dict[str, ModelSpec]
    keys: KeyRing
    signer: Signer
    fetcher: MediaFetcher
    uploads: UploadService


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def request_id(request: Request) -> str:
    """The id of this request, made once by `middleware.ObservabilityMiddleware`."""
    return scope_request_id(request.scope)


def authenticate(request: Request) -> Tenant:
    """The tenant of the `Authorization: Bearer <key>` header (API.md §4 401 rows)."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if not header or scheme.lower() != "bearer" or not key:
        raise InvalidApiKey("No API-key provided.")
    tenant = services(request).keys.lookup(key)
    if tenant is None:
        raise InvalidApiKey("Invalid API-key provided.")
    request.state.tenant = tenant
    return tenant


def workspace(request: Request) -> str | None:
    """`X-DashScope-WorkSpace`, recorded on tasks and used to filter lists."""
    value = request.headers.get("x-dashscope-workspace", "").strip()
    return value or None
