"""Large images made cheaply (a PNG streamed row by row) and peak-memory measurement in a child
process, for the tests that bound what checking an image may cost."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A few hundred bytes whose IHDR claims width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def black_png(width: int, height: int) -> bytes:
    """An all-black RGB PNG, compressed row by row: never holds the pixels."""
    deflate = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    data = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    )


def peak_rss_growth(setup: str, measured: str, *files: Path) -> dict[str, float]:
    """Run `setup`, then `measured`, in a fresh Python where `blobs` holds the bytes of `files` and
    `report(**numbers)` records results. Returns the report plus `peak_mb`: how far the child's
    peak RSS rose during `measured` above what it was after `setup`."""
    program = "\n".join(
        [
            "import json, resource, sys",
            "from pathlib import Path",
            "blobs = [Path(p).read_bytes() for p in sys.argv[1:]]",
            "numbers = {}",
            "def report(**kw): numbers.update(kw)",
            "def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024",
            setup,
            "base = peak()",
            measured,
            "numbers['peak_mb'] = peak() - base",
            "print(json.dumps(numbers))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", program, *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
