"""A PNG's integrity checked without holding its pixels.

Decoding a PNG to check it costs width x height x channels bytes: 300 MB for an all-black
10000x10000 image whose file is 285 KB. Instead every chunk's CRC is checked, and the image data
(the concatenated IDAT chunks) is inflated in slices of at most `SLICE_BYTES` that are counted
and thrown away: the stream must end exactly where the header says the filtered scanlines end.
That catches truncated and corrupt files as a full decode would, in constant memory.
"""

from __future__ import annotations

import math
import struct
import zlib

from server.errors import InvalidParameter

SLICE_BYTES = 1024 * 1024
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (x start, y start, x step, y step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def scanline_bytes(width: int, height: int, bit_depth: int, colour: int, interlaced: bool) -> int:
    """The inflated size of the image data: each (sub-)image row is one filter byte plus its
    packed samples."""
    bits = bit_depth * _CHANNELS[colour]

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + math.ceil(w * bits / 8))

    if not interlaced:
        return rows(width, height)
    return sum(
        rows(max(0, math.ceil((width - x0) / dx)), max(0, math.ceil((height - y0) / dy)))
        for x0, y0, dx, dy in _ADAM7
    )


def check_png_stream(data: bytes, where: str) -> bytes | None:
    """`InvalidParameter` if the PNG is truncated or corrupt; else its raw `eXIf` chunk, if any
    (so the orientation can be read without a decode)."""
    broken = InvalidParameter(f"{where}: image could not be decoded (truncated or corrupt)")
    if not data.startswith(_SIGNATURE):
        raise broken
    inflater = zlib.decompressobj()
    inflated, expected, exif, pos = 0, -1, None, len(_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise broken  # no IEND: truncated
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != int.from_bytes(crc, "big"):
            raise broken
        pos += 12 + length
        if kind == b"IHDR" and length == 13:
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if colour not in _CHANNELS:
                raise broken
            expected = scanline_bytes(width, height, depth, colour, interlace == 1)
        elif kind == b"IDAT":
            inflated += _inflate(inflater, body, broken)
        elif kind == b"eXIf":
            exif = body
        elif kind == b"IEND":
            break
    inflated += len(inflater.flush())  # what zlib still held when the last slice filled up
    if expected < 0 or not inflater.eof or inflated != expected:
        raise broken
    return exif


def _inflate(inflater: zlib._Decompress, chunk: bytes, broken: InvalidParameter) -> int:
    """Feed one IDAT chunk; the number of bytes it inflated to, never holding more than a slice."""
    total = 0
    try:
        out = inflater.decompress(chunk, SLICE_BYTES)
        total += len(out)
        while inflater.unconsumed_tail:
            out = inflater.decompress(inflater.unconsumed_tail, SLICE_BYTES)
            total += len(out)
    except zlib.error:
        raise broken from None
    return total
