"""Input media: fetching a client's URL safely (SSRF guard, size and time caps) and checking
images and videos against the rules of API.md §2 before anything is queued.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import io
import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin

import av
import httpx
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from server.api.errors import InvalidParameter, InvalidURL, download_failed
from server.netguard import AddressGuard, Resolver, Target, checked_ips, parse_target, system_resolver

if TYPE_CHECKING:
    from server.config import Settings

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MB = 1024 * 1024


def _mb(n: int) -> str:
    return f"{n / _MB:g} MB"


def _where(field: str, rule_name: str) -> str:
    """`input.media[0] (first_frame)`: the field plus the rule set it is checked against."""
    tag = f"({rule_name})"
    return field if not rule_name or tag in field else f"{field} {tag}"


def _too_large(field: str, limit: int) -> InvalidParameter:
    return InvalidParameter(f"{field}: file size must be at most {_mb(limit)}")


# -- fetching --------------------------------------------------------------------------------------------


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
        # No keep-alive: a pooled TLS connection to an IP must never serve another hostname's SNI.
        # No proxies from the environment: a proxy would resolve the name again, undoing the pin.
        # CA bundles from the environment (SSL_CERT_FILE/DIR) still apply, for operators' own CAs.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            verify=httpx.create_ssl_context(trust_env=True),
            timeout=policy.timeout_s,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

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
                response = await self._client.send(self._pinned_request(target, ip), stream=True)
            except httpx.ConnectError as exc:
                last_error = exc  # try the host's next address, like a browser would
                continue
            try:
                return await _read_response(response, max_bytes=max_bytes, field=field)
            finally:
                await response.aclose()
        raise download_failed(f"could not connect to {target.host}") from last_error

    def _pinned_request(self, target: Target, ip: str) -> httpx.Request:
        """A request to the checked IP carrying the original Host (and SNI), so DNS is not asked twice."""
        pinned = target.url.copy_with(host=ip.split("%", 1)[0], fragment=None)
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        host_header = target.url.netloc.decode("ascii")
        return self._client.build_request(
            "GET",
            pinned,
            headers={"Host": host_header, "Accept-Encoding": "identity"},
            extensions=extensions,
        )


async def _read_response(response: httpx.Response, *, max_bytes: int, field: str) -> tuple[bytes, str | None]:
    status = response.status_code
    if status in _REDIRECTS and "location" in response.headers:
        return b"", response.headers["location"]
    if status >= 300:
        raise download_failed(f"HTTP {status}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(field, max_bytes)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(field, max_bytes)
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
        raise _too_large(field, max_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter(f"{field}: malformed data URI (invalid base64)") from None
    if not data:
        raise InvalidParameter(f"{field}: empty data URI")
    if len(data) > max_bytes:
        raise _too_large(field, max_bytes)
    return data


# -- images ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImageRule:
    """An image rule set from API.md §2; `name` is the media type it applies to, used in messages."""

    name: str = "image"
    min_width: int = 300
    min_height: int = 300
    min_short_side: int = 0
    min_aspect: float = 1 / 2.5  # width / height
    max_aspect: float = 2.5
    max_bytes: int = 20 * _MB


FIRST_FRAME_RULE = ImageRule(name="first_frame")
R2V_REFERENCE_RULE = ImageRule(
    name="reference_image", min_width=0, min_height=0, min_short_side=400, min_aspect=0.0, max_aspect=math.inf
)
EDIT_REFERENCE_RULE = ImageRule(name="reference_image")


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What an accepted image is: format by content, size as displayed (EXIF rotation applied)."""

    format: str  # "jpeg" | "png" | "webp"
    content_type: str
    width: int
    height: int


_IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_ASPECT_SLACK = 1e-9
_OPENERS: dict[str, Callable[[io.BytesIO], ImageFile.ImageFile]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "webp": WebPImagePlugin.WebPImageFile,
}


def sniff_image(data: bytes) -> str | None:
    """The format from the magic bytes (jpeg, png, webp) or None: names and mime types lie, bytes don't."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def inspect_image(data: bytes, rule: ImageRule, *, field: str, max_pixels: int) -> ImageInfo:
    """Check an image against `rule` (header first, then a capped full decode); its facts if it passes."""
    where = _where(field, rule.name)
    fmt = sniff_image(data)
    if fmt is None:
        raise InvalidParameter(f"{where}: image must be JPEG, PNG or WEBP")
    if len(data) > rule.max_bytes:
        raise InvalidParameter(f"{where}: image file size must be at most {_mb(rule.max_bytes)}")
    if fmt == "webp":
        # Pillow's WebP opener allocates the whole canvas, so the cap must come before it.
        _check_pixels(*_webp_size(data, where), max_pixels, where)
    with _open_header(data, fmt, where) as img:
        width, height = img.size
        _check_pixels(width, height, max_pixels, where)
        _check_image_size(width, height, rule, where)
        _decode(img, where)
        if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations that swap the axes
            width, height = height, width
    return ImageInfo(format=fmt, content_type=_IMAGE_TYPES[fmt], width=width, height=height)


def _check_pixels(width: int, height: int, max_pixels: int, where: str) -> None:
    if width * height > max_pixels:
        raise InvalidParameter(
            f"{where}: image is {width}x{height} ({width * height} pixels), "
            f"more than the {max_pixels} pixels allowed"
        )


def _webp_size(data: bytes, where: str) -> tuple[int, int]:
    """Canvas size from the first WebP chunk (VP8X, VP8L or VP8), without decoding."""
    chunk, body = data[12:16], data[20:30]
    if chunk == b"VP8X" and len(body) >= 10:
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF
    raise InvalidParameter(f"{where}: image could not be decoded (bad WEBP header)")


def _open_header(data: bytes, fmt: str, where: str) -> ImageFile.ImageFile:
    """Parse only the header: the sniffed format's plugin, lazily, and nothing else.

    The plugin class is used directly rather than `Image.open` so that our `max_pixels` is the cap
    (checked by the caller before any decode) instead of Pillow's process-wide MAX_IMAGE_PIXELS.
    """
    try:
        return _OPENERS[fmt](io.BytesIO(data))
    except Image.DecompressionBombError:
        raise InvalidParameter(f"{where}: image has more pixels than allowed") from None
    except (OSError, SyntaxError, ValueError, IndexError, TypeError, EOFError, struct.error):
        raise InvalidParameter(f"{where}: image could not be decoded") from None


def _check_image_size(width: int, height: int, rule: ImageRule, where: str) -> None:
    got = f"got {width}x{height}"
    if width < rule.min_width or height < rule.min_height:
        if rule.min_width == rule.min_height:
            need = f"width and height must be at least {rule.min_width} px"
        else:
            need = f"width must be at least {rule.min_width} px and height at least {rule.min_height} px"
        raise InvalidParameter(f"{where}: image {need}, {got}")
    if min(width, height) < rule.min_short_side:
        raise InvalidParameter(f"{where}: image short side must be at least {rule.min_short_side} px, {got}")
    _check_aspect(width, height, rule.min_aspect, rule.max_aspect, f"{where}: image", got)


def _check_aspect(width: int, height: int, lo: float, hi: float, prefix: str, got: str) -> None:
    if height <= 0 or width <= 0:
        raise InvalidParameter(f"{prefix} has no pixels, {got}")
    aspect = width / height
    if aspect < lo - _ASPECT_SLACK or aspect > hi + _ASPECT_SLACK:
        bounds = f"1:{1 / lo:g} and {hi:g}:1" if lo > 0 else f"0 and {hi:g}:1"
        raise InvalidParameter(f"{prefix} aspect ratio (width:height) must be between {bounds}, {got}")


def _decode(img: Image.Image, where: str) -> None:
    """Decode every pixel once: catches truncated or corrupt files a header check lets through."""
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidParameter(f"{where}: image could not be decoded (truncated or corrupt)") from None


# -- videos ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VideoRule:
    """The video rule set from API.md §2 (video-edit input)."""

    name: str = "video"
    min_duration_s: float = 3.0
    max_duration_s: float = 60.0
    max_long_side: int = 4096
    min_short_side: int = 360
    min_aspect: float = 1 / 2.5
    max_aspect: float = 2.5
    max_bytes: int = 100 * _MB
    min_fps_exclusive: float = 8.0


EDIT_VIDEO_RULE = VideoRule()


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What an accepted video is, as probed from its container (size as displayed, rotation applied)."""

    format: str  # "mp4" | "mov"
    content_type: str
    width: int
    height: int
    duration_s: float
    fps: float
    has_audio: bool


_VIDEO_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime"}
# Old QuickTime files may start with one of these atoms instead of 'ftyp'.
_QT_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


def sniff_container(data: bytes) -> str | None:
    """The container from the first ISO-BMFF box (mov for brand 'qt  ', else mp4), or None."""
    if len(data) < 12:
        return None
    box = data[4:8]
    if box == b"ftyp":
        return "mov" if data[8:12] == b"qt  " else "mp4"
    return "mov" if box in _QT_FIRST_ATOMS else None


def inspect_video(data: bytes, rule: VideoRule, *, field: str) -> VideoInfo:
    """Probe a video in memory and check it against `rule`; its facts if it passes."""
    where = _where(field, rule.name)
    fmt = sniff_container(data)
    if fmt is None:
        raise InvalidParameter(f"{where}: video must be MP4 or MOV")
    if len(data) > rule.max_bytes:
        raise InvalidParameter(f"{where}: video file size must be at most {_mb(rule.max_bytes)}")
    try:
        # Force the mov/mp4 demuxer: content that merely starts with 'ftyp' reaches no other one.
        with av.open(io.BytesIO(data), mode="r", format="mov") as container:
            info = _probe(container, fmt, where)
            _check_video(info, rule, where)
            rotation = _decode_first_frame(container, where)
    except (av.FFmpegError, OSError, ValueError, EOFError):
        raise InvalidParameter(f"{where}: video could not be read") from None
    if rotation % 180 == 90:  # a phone video shown portrait: report what a viewer sees
        info = dataclasses.replace(info, width=info.height, height=info.width)
    return info


def _probe(container: av.container.InputContainer, fmt: str, where: str) -> VideoInfo:
    if not container.streams.video:
        raise InvalidParameter(f"{where}: video has no video stream")
    stream = container.streams.video[0]
    duration = _duration(container, stream)
    fps = _fps(stream, duration)
    return VideoInfo(
        format=fmt,
        content_type=_VIDEO_TYPES[fmt],
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        duration_s=duration,
        fps=fps,
        has_audio=bool(container.streams.audio),
    )


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _fps(stream: av.video.stream.VideoStream, duration: float) -> float:
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        return float(rate)
    if stream.frames and duration > 0:
        return stream.frames / duration
    return 0.0


def _check_video(info: VideoInfo, rule: VideoRule, where: str) -> None:
    w, h = info.width, info.height
    got = f"got {w}x{h}"
    if not rule.min_duration_s <= info.duration_s <= rule.max_duration_s:
        raise InvalidParameter(
            f"{where}: video duration must be {rule.min_duration_s:g} to {rule.max_duration_s:g} s, "
            f"got {info.duration_s:.2f} s"
        )
    if max(w, h) > rule.max_long_side:
        raise InvalidParameter(f"{where}: video long side must be at most {rule.max_long_side} px, {got}")
    if min(w, h) < rule.min_short_side:
        raise InvalidParameter(f"{where}: video short side must be at least {rule.min_short_side} px, {got}")
    _check_aspect(w, h, rule.min_aspect, rule.max_aspect, f"{where}: video", got)
    if not info.fps > rule.min_fps_exclusive:
        raise InvalidParameter(
            f"{where}: video frame rate must be more than {rule.min_fps_exclusive:g} fps, got {info.fps:.2f}"
        )


def _decode_first_frame(container: av.container.InputContainer, where: str) -> int:
    """Decode one frame (after the size checks) so an undecodable stream fails now, not in a worker.

    Returns its display rotation in degrees (0, 90, 180 or 270).
    """
    for frame in container.decode(video=0):
        return round(frame.rotation) % 360
    raise InvalidParameter(f"{where}: video has no decodable frames")
