"""What checking a large image costs in memory: measured as the peak RSS of a child process.

An all-black 10000x10000 PNG is 285 KB on disk and 300 MB decoded; a full decode per image is
what let one r2v request with nine of them peak at 2.2 GB. The checks must stay far below that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bigimages import REPO, black_png, peak_rss_growth

SIDE = 10_000


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "black.png"
    path.write_bytes(black_png(SIDE, SIDE))
    return path


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "black.jpg"
    # Made in a child so this test process never holds the 300 MB canvas.
    code = (
        "import sys; from PIL import Image; "
        f"Image.new('RGB', ({SIDE}, {SIDE})).save(sys.argv[1], format='JPEG', quality=50)"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=REPO)
    return path


SETUP = "from server.media import FIRST_FRAME_RULE, inspect_image"
MEASURED = (
    "info = inspect_image(blobs[0], FIRST_FRAME_RULE, field='f', max_pixels=10**8)\n"
    "report(width=info.width, height=info.height)"
)


@pytest.mark.parametrize("image", ["big_png", "big_jpeg"])
def test_checking_a_100_megapixel_image_stays_small(image: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(image)
    result = peak_rss_growth(SETUP, MEASURED, path)
    assert (result["width"], result["height"]) == (SIDE, SIDE)
    assert result["peak_mb"] < 40, result  # a full decode is 300 MB


def test_corrupt_big_png_is_still_caught(big_png: Path) -> None:
    data = bytearray(big_png.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the image data: the chunk's CRC no longer matches
    code = (
        "from server.media import FIRST_FRAME_RULE, inspect_image\n"
        "from server.errors import InvalidParameter\n"
        "try:\n"
        "    inspect_image(blobs[0], FIRST_FRAME_RULE, field='f', max_pixels=10**8)\n"
        "    report(refused='')\n"
        "except InvalidParameter as exc:\n"
        "    report(refused=exc.message)"
    )
    path = big_png.with_name("corrupt.png")
    path.write_bytes(bytes(data))
    assert "truncated or corrupt" in str(peak_rss_growth("", code, path)["refused"])


def test_r2v_with_nine_of_them_through_the_facade(big_png: Path) -> None:
    setup = "\n".join(
        [
            "import asyncio, tempfile, httpx",
            "from server.api.app import create_app",
            "from server.config import Settings",
            "tmp = tempfile.mkdtemp()",
            "settings = Settings(",
            "    data_dir=tmp, storage_url='file://' + tmp, api_keys='sk-a', max_image_pixels=10**8",
            ")",
            "app = create_app(settings)",
            "uri = 'data:image/png;base64,' + __import__('base64').b64encode(blobs[0]).decode()",
        ]
    )
    measured = "\n".join(
        [
            "async def main():",
            "    async with app.router.lifespan_context(app):",
            "        transport = httpx.ASGITransport(app=app)",
            "        async with httpx.AsyncClient(transport=transport, base_url='http://t') as c:",
            "            media = [{'type': 'reference_image', 'url': uri}] * 9",
            "            inp = {'prompt': '[Image 1]', 'media': media}",
            "            body = {'model': 'happyhorse-1.0-r2v', 'input': inp}",
            "            headers = {'Authorization': 'Bearer sk-a', 'X-DashScope-Async': 'enable'}",
            "            r = await c.post('/api/v1/services/aigc/video-generation/video-synthesis',",
            "                             json=body, headers=headers, timeout=120)",
            "            report(status=r.status_code)",
            "asyncio.run(main())",
        ]
    )
    result = peak_rss_growth(setup, measured, big_png)
    assert result["status"] == 200
    # Nine 20 MB inputs are held and stored (the data itself); the decode adds little on top.
    assert result["peak_mb"] < 200, result  # it was 2,200 MB
