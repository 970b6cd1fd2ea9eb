"""Fetching a client's media URL safely: the SSRF guard on every hop (server/netguard.py), one
timeout for the whole fetch, a size cap while streaming; and base64 data URIs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin

import httpx

from server.errors import InvalidParameter, InvalidURL, download_failed
from server.media.common import too_large
from server.netguard import (
    AddressGuard,
    Resolver,
    Target,
    checked_ips,
    guarded_client,
    parse_target,
    pinned_request,
    system_resolver,
)

if TYPE_CHECKING:
    from server.config import Settings

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclasses.dataclass(frozen=True)
class FetchPolicy:
    """Where and how long the server may fetch. Defaults: public addresses only."""

    allow_private: bool = False
    allow_hosts: tuple[str, ...] = ()  # hostnames or CIDRs allowed even when non-public
    timeout_s: float = 30.0
    max_redirects: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        """The policy an operator configured through `PADDOCK_MEDIA_*`."""
        raw = getattr(settings, "media_allow_hosts", "") or ""
        return cls(
            allow_private=settings.media_allow_private,
            allow_hosts=tuple(h.strip() for h in raw.split(",") if h.strip()),
            timeout_s=settings.media_timeout_s,
            max_redirects=settings.media_max_redirects,
        )


class MediaFetcher:
    """Downloads client media. One per process; `aclose` on shutdown."""

    def __init__(self, policy: FetchPolicy, *, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._guard = AddressGuard(allow_private=policy.allow_private, allow_hosts=policy.allow_hosts)
        self._resolver = resolver or system_resolver
        self._client = guarded_client(policy.timeout_s)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()

    async def fetch(self, url: str, *, max_bytes: int, field: str, allow_data_uri: bool) -> bytes:
        """The bytes behind `url` (http(s) or, when allowed, a base64 data URI), at most `max_bytes`."""
        if url.strip()[:5].lower() == "data:":
            if not allow_data_uri:
                raise InvalidURL(f"{field}: a data URI is accepted for images only")
            return decode_data_uri(url.strip(), max_bytes=max_bytes, field=field)
        timeout = self._policy.timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await self._follow(url, max_bytes=max_bytes, field=field)
        except (TimeoutError, httpx.TimeoutException):
            raise download_failed(f"timed out after {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise download_failed(type(exc).__name__) from None

    async def _follow(self, url: str, *, max_bytes: int, field: str) -> bytes:
        current = url
        for _ in range(self._policy.max_redirects + 1):
            target = parse_target(current, field)
            ips = await checked_ips(target, self._guard, self._resolver, field=field)
            body, location = await self._get(target, ips, max_bytes=max_bytes, field=field)
            if location is None:
                return body
            current = urljoin(str(target.url), location)
        raise download_failed(f"more than {self._policy.max_redirects} redirects")

    async def _get(
        self, target: Target, ips: list[str], *, max_bytes: int, field: str
    ) -> tuple[bytes, str | None]:
        """GET from the first reachable checked IP: (body, None) or (b"", redirect location)."""
        last_error: httpx.ConnectError | None = None
        for ip in ips:
            try:
                request = pinned_request(
                    self._client, "GET", target, ip, headers={"Accept-Encoding": "identity"}
                )
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc  # try the host's next address, like a browser would
                continue
            try:
                return await _read_response(response, max_bytes=max_bytes, field=field)
            finally:
                await response.aclose()
        raise download_failed(f"could not connect to {target.host}") from last_error


async def _read_response(response: httpx.Response, *, max_bytes: int, field: str) -> tuple[bytes, str | None]:
    status = response.status_code
    if status in _REDIRECTS and "location" in response.headers:
        return b"", response.headers["location"]
    if status >= 300:
        raise download_failed(f"HTTP {status}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(field, max_bytes)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise too_large(field, max_bytes)
        chunks.append(chunk)
    if total == 0:
        raise download_failed("empty response body")
    return b"".join(chunks), None


def decode_data_uri(url: str, *, max_bytes: int, field: str) -> bytes:
    """The bytes of `data:image/...;base64,...`; the declared type is ignored later (content decides)."""
    head, sep, payload = url.partition(",")
    if not sep or head[:5].lower() != "data:":
        raise InvalidParameter(f"{field}: malformed data URI")
    params = [p.strip().lower() for p in head[5:].split(";")]
    if "base64" not in params[1:]:
        raise InvalidParameter(f"{field}: a data URI must be base64-encoded (data:image/png;base64,...)")
    if params[0] and not params[0].startswith("image/"):
        raise InvalidParameter(f"{field}: a data URI must carry an image")
    # Clients line-wrap or percent-encode base64; neither changes the bytes.
    text = "".join(unquote(payload).split())
    if len(text) // 4 * 3 > max_bytes + 3:
        raise too_large(field, max_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter(f"{field}: malformed data URI (invalid base64)") from None
    if not data:
        raise InvalidParameter(f"{field}: empty data URI")
    if len(data) > max_bytes:
        raise too_large(field, max_bytes)
    return data
