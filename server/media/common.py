"""What the media modules share: sizes in messages, and where a rule was broken."""

from __future__ import annotations

from server.errors import InvalidParameter

MB = 1024 * 1024


def mb(n: int) -> str:
    """`n` bytes as `20 MB`."""
    return f"{n / MB:g} MB"


def field_of(field: str, rule_name: str) -> str:
    """`input.media[0] (first_frame)`: the field plus the rule set it is checked against."""
    tag = f"({rule_name})"
    return field if not rule_name or tag in field else f"{field} {tag}"


def too_large(field: str, limit: int) -> InvalidParameter:
    return InvalidParameter(f"{field}: file size must be at most {mb(limit)}")


def check_aspect(width: int, height: int, lo: float, hi: float, prefix: str, got: str) -> None:
    """`InvalidParameter` unless width/height lies in [lo, hi] (a tiny slack for rounding)."""
    if height <= 0 or width <= 0:
        raise InvalidParameter(f"{prefix} has no pixels, {got}")
    aspect = width / height
    if aspect < lo - ASPECT_SLACK or aspect > hi + ASPECT_SLACK:
        bounds = f"1:{1 / lo:g} and {hi:g}:1" if lo > 0 else f"0 and {hi:g}:1"
        raise InvalidParameter(f"{prefix} aspect ratio (width:height) must be between {bounds}, {got}")


ASPECT_SLACK = 1e-9
