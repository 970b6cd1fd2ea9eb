"""Request bodies as JSON, with every malformed input turned into a 400 that says what is wrong.

Python's `json` accepts more than JSON: `NaN`, `Infinity` and `-Infinity` become floats, `1e400`
becomes infinity, an integer literal of more than 4,300 digits raises a bare `ValueError`, and a
body nested about 1,000 levels deep exhausts the recursion limit. None of that may become a 500.
Non-finite floats are left for the field checks (`schemas._int`), which name the field; integer
literals too long to be any valid value become `OversizedInt`, so the field check can say so
without ever converting thousands of digits (quadratic in CPython).

Large bodies (a data-URI image) are decoded on a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidParameter

# No paddock parameter needs more digits than this (seeds are below 2**31).
MAX_INT_DIGITS = 32
# Bodies up to this size decode on the event loop: a thread hop costs more than the decode.
INLINE_DECODE_BYTES = 256 * 1024


@dataclass(frozen=True)
class OversizedInt:
    """An integer literal with more than `MAX_INT_DIGITS` digits, kept unconverted."""

    digits: int

    def __repr__(self) -> str:
        return f"a {self.digits}-digit number"


def _parse_int(text: str) -> int | OversizedInt:
    digits = len(text.lstrip("-"))
    return OversizedInt(digits) if digits > MAX_INT_DIGITS else int(text)


def decode_json(raw: bytes) -> Any:
    """`raw` as JSON, or `InvalidParameter` describing why it is not acceptable."""
    try:
        return json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        raise InvalidParameter("The request body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise InvalidParameter("The request body is not valid JSON.") from None


async def read_json(raw: bytes) -> Any:
    """`decode_json`, off the event loop for large bodies."""
    if len(raw) <= INLINE_DECODE_BYTES:
        return decode_json(raw)
    return await asyncio.to_thread(decode_json, raw)
