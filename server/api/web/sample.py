"""The sample first frame shipped with paddock (`static/sample.jpg`), drawn here rather than downloaded.

A horse in a meadow at dawn, 768x512 (3:2): it passes every first-frame rule (>= 300 px, aspect
inside 1:2.5-2.5:1, a few tens of kB), so the README's tour and the playground's "Try a sample"
button work on a machine without internet. `python -m server.api.web.sample` redraws the file; a test
checks that the shipped file is this drawing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = (768, 512)
SAMPLE_PATH = Path(__file__).parent / "static" / "sample.jpg"
JPEG_QUALITY = 85

Color = tuple[int, int, int]
SKY_TOP: Color = (86, 132, 196)
SKY_HORIZON: Color = (246, 196, 150)
SUN: Color = (255, 236, 190)
HILLS: Color = (92, 128, 96)
MEADOW: Color = (104, 158, 72)
COAT: Color = (122, 74, 44)
MANE: Color = (52, 34, 26)
FENCE: Color = (226, 214, 192)


def _mix(a: Color, b: Color, t: float) -> Color:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _sky_and_land(draw: ImageDraw.ImageDraw, width: int, height: int) -> None:
    horizon = int(height * 0.62)
    for y in range(horizon):
        draw.line([(0, y), (width, y)], fill=_mix(SKY_TOP, SKY_HORIZON, y / horizon))
    draw.ellipse([540, 150, 620, 230], fill=SUN)
    draw.polygon([(0, horizon), (180, 250), (360, horizon - 20), (560, 270), (width, horizon)], fill=HILLS)
    for y in range(horizon, height):
        draw.line([(0, y), (width, y)], fill=_mix(MEADOW, (66, 112, 48), (y - horizon) / (height - horizon)))
    for x in range(40, width, 120):  # a fence along the far edge of the meadow
        draw.rectangle([x, horizon - 6, x + 6, horizon + 30], fill=FENCE)
    draw.rectangle([0, horizon + 2, width, horizon + 6], fill=FENCE)
    draw.rectangle([0, horizon + 16, width, horizon + 20], fill=FENCE)


def _horse(draw: ImageDraw.ImageDraw) -> None:
    draw.ellipse([250, 290, 470, 380], fill=COAT)  # body
    draw.polygon([(430, 310), (470, 230), (505, 240), (470, 330)], fill=COAT)  # neck
    draw.polygon([(470, 225), (540, 250), (545, 272), (500, 268), (478, 250)], fill=COAT)  # head
    draw.polygon([(468, 222), (476, 204), (484, 226)], fill=COAT)  # ear
    draw.polygon([(432, 300), (462, 226), (474, 228), (446, 306)], fill=MANE)  # mane
    draw.polygon([(255, 310), (215, 330), (200, 392), (226, 350), (260, 328)], fill=MANE)  # tail
    # Legs mid-gallop: front pair reaching forward, hind pair pushing off.
    for top, foot in (
        ((290, 360), (250, 448)),
        ((320, 365), (300, 456)),
        ((420, 360), (470, 440)),
        ((440, 355), (500, 428)),
    ):
        draw.line([top, foot], fill=COAT, width=16)
        draw.ellipse([foot[0] - 9, foot[1] - 6, foot[0] + 9, foot[1] + 6], fill=MANE)


def draw_sample() -> Image.Image:
    """The sample scene, deterministic to the pixel."""
    image = Image.new("RGB", SIZE)
    draw = ImageDraw.Draw(image)
    _sky_and_land(draw, *SIZE)
    _horse(draw)
    return image.filter(ImageFilter.SMOOTH)


def write_sample(path: Path = SAMPLE_PATH) -> Path:
    """Draw the scene and save it as the shipped JPEG."""
    draw_sample().save(path, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return path


if __name__ == "__main__":
    print(f"wrote {write_sample(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE_PATH)}")
