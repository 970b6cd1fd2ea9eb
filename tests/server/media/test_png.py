"""The bounded-memory PNG check accepts what Pillow writes and refuses what a decode would."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from server.errors import InvalidParameter
from server.media.png import check_png_stream, scanline_bytes


def pillow_png(mode: str, size: tuple[int, int], **save: object) -> bytes:
    out = io.BytesIO()
    image = Image.new(mode, size, 7 if mode in ("L", "P", "1", "I;16") else (10,) * len(mode))
    image.save(out, format="PNG", **save)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "save"),
    [("RGB", {}), ("RGBA", {}), ("L", {}), ("P", {}), ("1", {}), ("I;16", {}), ("RGB", {"interlace": 1})],
)
@pytest.mark.parametrize("size", [(301, 333), (1, 1), (17, 5)])
def test_pillow_pngs_pass(mode: str, save: dict[str, object], size: tuple[int, int]) -> None:
    assert check_png_stream(pillow_png(mode, size, **save), "f") is None


def test_exif_chunk_is_returned() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = pillow_png("RGB", (400, 300), exif=exif.tobytes())
    raw = check_png_stream(data, "f")
    assert raw is not None
    parsed = Image.Exif()
    parsed.load(raw)
    assert parsed[0x0112] == 6


def test_adam7_size() -> None:
    # 1x1: only the first pass has a pixel; 8x8 RGB: 7 passes of 1,1,2,4,8,16,32 pixels in rows.
    assert scanline_bytes(1, 1, 8, 2, True) == 1 + 3
    assert scanline_bytes(8, 8, 8, 2, True) == scanline_bytes(8, 8, 8, 2, False) - 8 + 15


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: d[: len(d) - 20], id="truncated"),
        pytest.param(lambda d: d[:-12], id="no-iend"),
        pytest.param(lambda d: d[:40] + bytes([d[40] ^ 1]) + d[41:], id="bad-crc"),
        pytest.param(lambda d: d[:8] + d[33:], id="no-ihdr"),
    ],
)
def test_damage_is_refused(damage: object) -> None:
    data = pillow_png("RGB", (320, 320))
    with pytest.raises(InvalidParameter, match="truncated or corrupt"):
        check_png_stream(damage(data), "f")  # type: ignore[operator]
