"""The web UI's routes: the page at `/`, its static files, and its two JSON routes.

The page itself is public (it holds no data); everything it shows comes from routes that take
the user's key: the DashScope API, `GET /web/models` (any key) and `GET /web/operator` (admin
keys). A strict Content-Security-Policy keeps the page to this server's own scripts and styles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from server.api.deps import authenticate
from server.api.web.catalogue import catalogue
from server.api.web.console import Console
from server.api.web.operator import operator_view
from server.config import Settings
from server.errors import AccessDenied

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}
# The shipped files, by name: nothing else under /static is ever served (no path tricks).
STATIC_FILES = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in MEDIA_TYPES}
NOT_ADMIN = "This API key may not open the operators' view: it needs admin: true in the key file."

router = APIRouter(include_in_schema=False)


def console(request: Request) -> Console:
    return cast(Console, request.app.state.web)


def content_security_policy(settings: Settings) -> str:
    """Own scripts and styles only. Videos may come from the store's host (S3, a CDN), and the
    upload host is this server's public URL, which may differ from the address typed in."""
    public = urlsplit(settings.base_url)
    own = f"'self' {public.scheme}://{public.netloc}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "media-src 'self' blob: http: https:",
            f"connect-src {own}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


@router.get("/")
async def index(request: Request) -> FileResponse:
    """The playground page."""
    return FileResponse(
        STATIC_FILES["index.html"],
        media_type=MEDIA_TYPES[".html"],
        headers=_headers(console(request).settings),
    )


@router.get("/static/{name}")
async def static_file(name: str, request: Request) -> FileResponse:
    """One of the page's shipped files (scripts, styles, the sample image); 404 for anything else."""
    path = STATIC_FILES.get(name)
    if path is None:
        raise HTTPException(status_code=404)
    return FileResponse(
        path, media_type=MEDIA_TYPES[path.suffix], headers=_headers(console(request).settings)
    )


@router.get("/web/models")
async def models(request: Request) -> dict[str, Any]:
    """The models this key may use, with their parameters and media rules, and its admin flag."""
    tenant = authenticate(request)
    web = console(request)
    return catalogue(web.registry, tenant, web.settings)


@router.get("/web/operator")
async def operator(request: Request) -> dict[str, Any]:
    """Queue depth, ready workers, running jobs per model and recent failures (admin keys only)."""
    tenant = authenticate(request)
    if not tenant.admin:
        raise AccessDenied(NOT_ADMIN)
    return await operator_view(console(request).queue)
