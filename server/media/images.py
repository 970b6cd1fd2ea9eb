"""Checking an image against the rules of API.md §2, with bounded memory.

The size rules are checked from the header; the pixel data is then read once so a truncated or
corrupt file fails at submit time, not in a worker. That read never holds the full image: JPEG
decodes at 1/8 scale (libjpeg's DCT scaling), PNG is checked chunk by chunk (CRCs, then the
compressed stream inflated in slices and thrown away, `png.py`). Only WebP is decoded in full,
bounded by the pixel cap and by the facade's limit on concurrent decodes (`service.py`).
"""

from __future__ import annotations

import dataclasses
import io
import math
import struct
from collections.abc import Callable

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from server.errors import InvalidParameter
from server.media.common import MB, check_aspect, field_of, mb
from server.media.png import check_png_stream


@dataclasses.dataclass(frozen=True)
class ImageRule:
    """An image rule set from API.md §2; `name` is the media type it applies to, used in messages."""

    name: str = "image"
    min_width: int = 300
    min_height: int = 300
    min_short_side: int = 0
    min_aspect: float = 1 / 2.5  # width / height
    max_aspect: float = 2.5
    max_bytes: int = 20 * MB


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
    """Check an image against `rule` (header first, then one bounded read of the pixel data); its
    facts if it passes."""
    where = field_of(field, rule.name)
    fmt = sniff_image(data)
    if fmt is None:
        raise InvalidParameter(f"{where}: image must be JPEG, PNG or WEBP")
    if len(data) > rule.max_bytes:
        raise InvalidParameter(f"{where}: image file size must be at most {mb(rule.max_bytes)}")
    if fmt == "webp":
        # Pillow's WebP opener allocates the whole canvas, so the cap must come before it.
        _check_pixels(*_webp_size(data, where), max_pixels, where)
    with _open_header(data, fmt, where) as img:
        width, height = img.size
        _check_pixels(width, height, max_pixels, where)
        _check_image_size(width, height, rule, where)
        orientation = _read_pixels(img, fmt, data, where)
    if orientation in (5, 6, 7, 8):  # EXIF orientations that swap the axes
        width, height = height, width
    return ImageInfo(format=fmt, content_type=_IMAGE_TYPES[fmt], width=width, height=height)


def _read_pixels(img: ImageFile.ImageFile, fmt: str, data: bytes, where: str) -> int:
    """Read the pixel data once, in bounded memory (module docstring); the EXIF orientation."""
    if fmt == "png":
        exif = Image.Exif()
        raw = check_png_stream(data, where)
        if raw is not None:
            exif.load(raw)
        return int(exif.get(0x0112, 1))
    if fmt == "jpeg":
        # Asks libjpeg for a 1/8-scale decode: every coefficient is still read and checked.
        img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
    _decode(img, where)
    return int(img.getexif().get(0x0112, 1))


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
    check_aspect(width, height, rule.min_aspect, rule.max_aspect, f"{where}: image", got)


def _decode(img: Image.Image, where: str) -> None:
    """Decode every pixel once: catches truncated or corrupt files a header check lets through."""
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidParameter(f"{where}: image could not be decoded (truncated or corrupt)") from None
