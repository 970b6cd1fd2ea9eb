"""The create-task body (API.md §2): parsing, the parameter rules, prompt truncation, output size.

Parsed by hand rather than by a pydantic model so that every rejection carries the exact
DashScope code (`BadRequest.EmptyModel`, `InvalidParameter`, ...) and names the field.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from enum import StrEnum
from typing import Any

from model.registry import ModelSpec, TaskFamily
from server.api.jsonbody import OversizedInt
from server.errors import InvalidParameter, empty_input, empty_model

BEIJING = timezone(timedelta(hours=8))
MAX_PROMPT_UNITS = 5000
MAX_SEED = 2_147_483_647
MAX_WEBHOOK_URL_CHARS = 2048
RESOLUTIONS = {"720P": 720, "1080P": 1080}
TIER_PIXELS = {"720P": 921_600, "1080P": 2_073_600}
RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "4:5", "5:4", "9:21", "21:9")
# Published sizes (API.md §2, after Wan 2.7's table); other ratios keep the tier's pixel count.
FIXED_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("720P", "16:9"): (1280, 720),
    ("720P", "9:16"): (720, 1280),
    ("720P", "1:1"): (960, 960),
    ("720P", "4:3"): (1104, 832),
    ("720P", "3:4"): (832, 1104),
    ("1080P", "16:9"): (1920, 1080),
    ("1080P", "9:16"): (1080, 1920),
    ("1080P", "1:1"): (1440, 1440),
    ("1080P", "4:3"): (1648, 1248),
    ("1080P", "3:4"): (1248, 1648),
}


class MediaKind(StrEnum):
    """`input.media[].type` (API.md §2)."""

    FIRST_FRAME = "first_frame"
    REFERENCE_IMAGE = "reference_image"
    VIDEO = "video"


MEDIA_TYPES: dict[TaskFamily, dict[MediaKind, tuple[int, int]]] = {
    # family -> media type -> (min count, max count)
    TaskFamily.T2V: {},
    TaskFamily.I2V: {MediaKind.FIRST_FRAME: (1, 1)},
    TaskFamily.R2V: {MediaKind.REFERENCE_IMAGE: (1, 9)},
    TaskFamily.VIDEO_EDIT: {MediaKind.VIDEO: (1, 1), MediaKind.REFERENCE_IMAGE: (0, 5)},
}
PROMPT_REQUIRED = {TaskFamily.T2V, TaskFamily.R2V, TaskFamily.VIDEO_EDIT}


@dataclass(frozen=True)
class MediaItem:
    """One `input.media` entry as the client sent it."""

    index: int
    type: str
    url: str

    @property
    def field(self) -> str:
        return f"input.media[{self.index}] ({self.type})"


@dataclass(frozen=True)
class CreateRequest:
    """A create-task body after the schema checks, before any media is fetched."""

    model: str
    prompt: str  # already cut to the prompt limit: nothing longer is ever stored
    media: tuple[MediaItem, ...]
    resolution: str
    ratio: str | None
    duration: int
    watermark: bool
    seed: int | None
    audio_setting: str
    webhook_url: str | None = None  # paddock's own: where to announce the final state
    extra: dict[str, Any] = field(default_factory=dict)


def model_name(body: Any) -> str:
    """The `model` of a create body; checked first so the right error code wins."""
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    name = body.get("model")
    if name is None or name == "":
        raise empty_model()
    if not isinstance(name, str):
        raise InvalidParameter("model must be a string.")
    return name


def parse_create(body: dict[str, Any], spec: ModelSpec) -> CreateRequest:
    """Check a create body against the model's family (API.md §2). Unknown keys are ignored."""
    inp = body.get("input")
    if inp is None:
        raise empty_input()
    if not isinstance(inp, dict):
        raise InvalidParameter("input must be a JSON object.")
    params = body.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParameter("parameters must be a JSON object.")

    prompt = truncate_prompt(_prompt(inp, spec.family))
    media = _media(inp, spec.family)
    resolution = _choice(params, "resolution", tuple(RESOLUTIONS), "1080P")
    ratio = (
        _choice(params, "ratio", RATIOS, "16:9") if spec.family in (TaskFamily.T2V, TaskFamily.R2V) else None
    )
    duration = _int(params, "duration", 5, 3, 15) if spec.family != TaskFamily.VIDEO_EDIT else 0
    watermark = _bool(params, "watermark", True)
    seed = _int(params, "seed", None, 0, MAX_SEED)
    audio_setting = "auto"
    if spec.family == TaskFamily.VIDEO_EDIT:
        audio_setting = _choice(params, "audio_setting", ("auto", "origin"), "auto")
    return CreateRequest(
        model=spec.name,
        prompt=prompt,
        media=media,
        resolution=resolution,
        ratio=ratio,
        duration=duration,
        watermark=watermark,
        seed=seed,
        audio_setting=audio_setting,
        webhook_url=_webhook_url(params),
    )


def _webhook_url(params: dict[str, Any]) -> str | None:
    value = params.get("webhook_url")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter("parameters.webhook_url must be an http(s) URL.", param="webhook_url")
    if len(value) > MAX_WEBHOOK_URL_CHARS:
        raise InvalidParameter(
            f"parameters.webhook_url must be at most {MAX_WEBHOOK_URL_CHARS} characters.", param="webhook_url"
        )
    return value.strip()


def _prompt(inp: dict[str, Any], family: TaskFamily) -> str:
    prompt = inp.get("prompt")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise InvalidParameter("input.prompt must be a string.")
    if family in PROMPT_REQUIRED and not prompt.strip():
        raise InvalidParameter(f"input.prompt is required for {family.value} models.")
    return prompt


def _media(inp: dict[str, Any], family: TaskFamily) -> tuple[MediaItem, ...]:
    raw = inp.get("media")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidParameter("input.media must be a list of {type, url} objects.")
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise InvalidParameter(f"input.media[{i}] must be an object with a string 'type'.")
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            raise InvalidParameter(f"input.media[{i}].url is required.")
        items.append(MediaItem(i, entry["type"], url.strip()))
    legacy = inp.get("img_url")
    if legacy and family == TaskFamily.I2V and not items:
        if not isinstance(legacy, str):
            raise InvalidParameter("input.img_url must be a string.")
        items.append(MediaItem(0, "first_frame", legacy.strip()))
    _check_media_counts(items, family)
    return tuple(items)


def _check_media_counts(items: list[MediaItem], family: TaskFamily) -> None:
    allowed = MEDIA_TYPES[family]
    for item in items:
        if item.type not in allowed:
            kinds = ", ".join(allowed) or "none"
            raise InvalidParameter(
                f"{item.field}: media type {item.type!r} is not supported by {family.value} models "
                f"(allowed: {kinds})."
            )
    for kind, (low, high) in allowed.items():
        count = sum(1 for item in items if item.type == kind)
        if not low <= count <= high:
            want = f"exactly {low}" if low == high else f"{low} to {high}"
            raise InvalidParameter(f"input.media: {family.value} models take {want} {kind}, got {count}.")


def _choice(params: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise InvalidParameter(f"parameters.{name} must be one of {', '.join(allowed)}, got {value!r}.")
    return str(value)


def _int(params: dict[str, Any], name: str, default: int | None, low: int, high: int) -> Any:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, OversizedInt):
        raise InvalidParameter(f"parameters.{name} must be between {low} and {high}, got {value!r}.")
    # NaN, Infinity and 1e400 (parsed as inf) are floats that no integer equals.
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidParameter(f"parameters.{name} must be an integer, got {json.dumps(value)}.")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidParameter(f"parameters.{name} must be an integer, got {value!r}.")
    if not low <= value <= high:
        raise InvalidParameter(f"parameters.{name} must be between {low} and {high}, got {value}.")
    return int(value)


def _bool(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidParameter(f"parameters.{name} must be true or false, got {value!r}.")
    return value


def truncate_prompt(prompt: str) -> str:
    """Silently cut a prompt to 5000 units, a CJK character counting 2 (API.md §2, ours).

    Every character is at least one unit, so only the first 5000 characters can survive: the
    scan never looks further, whatever the prompt's length."""
    units = 0
    for i, ch in enumerate(prompt[: MAX_PROMPT_UNITS + 1]):
        units += 2 if _is_wide(ch) else 1
        if units > MAX_PROMPT_UNITS:
            return prompt[:i]
    return prompt


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def output_size(
    resolution: str, ratio: str | None, source_wh: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The delivered pixel size (API.md §2): the published table, else the tier's pixel count at
    the ratio (or the source image's/video's aspect), both sides multiples of 16."""
    if source_wh is None and ratio is not None and (resolution, ratio) in FIXED_SIZES:
        return FIXED_SIZES[(resolution, ratio)]
    if source_wh is not None:
        aspect = source_wh[0] / source_wh[1]
    else:
        num, den = (ratio or "16:9").split(":")
        aspect = int(num) / int(den)
    pixels = TIER_PIXELS[resolution]
    width = max(16, round(math.sqrt(pixels * aspect) / 16) * 16)
    height = max(16, round(math.sqrt(pixels / aspect) / 16) * 16)
    return width, height
