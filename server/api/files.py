"""`GET|HEAD /files/{key}?expires=&sig=`: objects of the local (`file://`) store at signed URLs.

The URLs come from `LocalObjectStore.url` (result videos, DESIGN.md §1). A missing, tampered or
expired signature is a 403 `AccessDenied`; an object that is gone (deleted or past its expiry)
is a 404 `NotFound`. Byte ranges (`Range: bytes=a-b`, `a-`, `-n`) are answered with 206 and
`Content-Range`, unsatisfiable ones with 416, by Starlette's `FileResponse`.
"""

from __future__ import annotations

import time
from typing import cast

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from server.errors import AccessDenied, NotFound
from server.storage.base import ObjectNotFound
from server.storage.local import LocalObjectStore

router = APIRouter()


def served_files(request: Request) -> LocalObjectStore | None:
    """The local store whose files this facade serves (None for S3: it presigns instead)."""
    return cast("LocalObjectStore | None", request.app.state.files)


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
def get_file(request: Request, key: str, expires: str = "", sig: str = "") -> FileResponse:
    """Serve the object `key` if `expires`/`sig` are a valid, unexpired signature for it."""
    store = served_files(request)
    if store is None:
        raise NotFound("Files are not served by this server.")
    if not expires or not sig:
        raise AccessDenied("Request is missing a signature.")
    if not store.verify_url(key, expires, sig):
        raise AccessDenied("The signature is invalid or has expired.")
    try:
        path, content_type = store.open_for_serving(key)
    except (ObjectNotFound, ValueError) as exc:
        raise NotFound("The object does not exist or has expired.") from exc
    max_age = max(0, int(expires) - int(time.time()))
    return FileResponse(
        path, media_type=content_type, headers={"Cache-Control": f"private, max-age={max_age}"}
    )
