"""An OpenAI create (JSON or multipart) as the DashScope create body `TaskService` checks and runs.

- `model`: an alias from `PADDOCK_OPENAI_MODELS` (one registry name, or one per kind: `t2v`
  without an input_reference, `i2v` with one), or a registry name; default
  `PADDOCK_OPENAI_DEFAULT_MODEL`.
- `size` (`WIDTHxHEIGHT`, default 720x1280): the tier whose pixel count is nearer (720P or 1080P)
  and, for text-to-video, the nearest of DashScope's ratios; the object's `size` then says what is
  delivered (an image-to-video keeps the image's aspect, as on the DashScope surface).
- `seconds` (default 4): 3 to 15, the models' range.
- `input_reference`: an uploaded image (multipart), or `{"image_url": ...}` (an http(s) URL or a
  data URI); the first frame for i2v models, the reference for r2v ones.
- paddock's own extras: `webhook_url`, `seed`, `watermark`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model.registry import Endpoint, ModelSpec, TaskFamily
from server.api.schemas import RATIOS, TIER_PIXELS
from server.api.tasks.service import ATTACHED_SCHEME
from server.config import Settings
from server.errors import InvalidParameter

DEFAULT_SIZE = (720, 1280)
DEFAULT_SECONDS = 4
MIN_SECONDS, MAX_SECONDS = 3, 15
MAX_SIDE = 8192
# A size nearer 720P's pixel count than 1080P's is served at 720P.
TIER_SPLIT = (TIER_PIXELS["720P"] + TIER_PIXELS["1080P"]) / 2
REFERENCE_URL = ATTACHED_SCHEME + "input_reference"
EXTRAS = ("webhook_url", "seed", "watermark")


@dataclass(frozen=True)
class VideoRequest:
    """An OpenAI create after its own checks, before the model's."""

    prompt: str
    model: str | None
    seconds: int
    size: tuple[int, int]
    reference: str | None  # a URL, or REFERENCE_URL for an uploaded file
    extras: dict[str, Any] = field(default_factory=dict)


def from_json(body: Any) -> VideoRequest:
    """A JSON create body."""
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    reference = body.get("input_reference")
    url: str | None = None
    if reference is not None:
        if not isinstance(reference, dict):
            raise _invalid("input_reference must be an object with an image_url.", "input_reference")
        if reference.get("file_id") is not None:
            raise _invalid(_NO_FILE_IDS, "input_reference.file_id")
        url = _text(reference.get("image_url"), "input_reference.image_url")
    extras = {name: body[name] for name in EXTRAS if body.get(name) is not None}
    return _request(body.get("prompt"), body.get("model"), body.get("seconds"), body.get("size"), url, extras)


def from_form(fields: Mapping[str, str], has_file: bool) -> VideoRequest:
    """A multipart create (what the openai SDK sends): text fields, and whether an
    `input_reference` file came with them (its bytes travel as an attachment)."""
    if fields.get("input_reference[file_id]"):
        raise _invalid(_NO_FILE_IDS, "input_reference.file_id")
    url = REFERENCE_URL if has_file else fields.get("input_reference[image_url]")
    extras: dict[str, Any] = {}
    if fields.get("webhook_url"):
        extras["webhook_url"] = fields["webhook_url"]
    if fields.get("seed"):
        extras["seed"] = _form_int(fields["seed"], "seed")
    if fields.get("watermark"):
        extras["watermark"] = _form_bool(fields["watermark"], "watermark")
    model, seconds, size = fields.get("model"), fields.get("seconds"), fields.get("size")
    return _request(fields.get("prompt"), model, seconds, size, url, extras)


_NO_FILE_IDS = "input_reference.file_id: file ids are not supported; send the image or an image_url."


def resolve_model(
    requested: str | None, has_reference: bool, settings: Settings, registry: Mapping[str, ModelSpec]
) -> ModelSpec:
    """The registry model a create runs on (module docstring), checked against the reference."""
    name = requested or settings.openai_default_model
    kind = "i2v" if has_reference else "t2v"
    target = settings.openai_models.get(name, name)
    if isinstance(target, dict):
        if kind not in target:
            raise _invalid(f"model {name} has no {kind} model configured.", "model")
        target = target[kind]
    spec = registry.get(target)
    if spec is None or spec.endpoint != Endpoint.VIDEO_GENERATION or spec.family == TaskFamily.VIDEO_EDIT:
        names = sorted({*settings.openai_models, *(n for n, s in registry.items() if _creates(s))})
        raise _invalid(
            f"Invalid value for model: {name!r}. Supported values are: {', '.join(names)}.", "model"
        )
    takes_image = spec.family in (TaskFamily.I2V, TaskFamily.R2V)
    if has_reference and not takes_image:
        raise _invalid(
            f"model {spec.name} makes videos from text alone; it takes no input_reference.", "input_reference"
        )
    if takes_image and not has_reference:
        raise _invalid(f"model {spec.name} needs an input_reference image.", "input_reference")
    return spec


def dashscope_body(request: VideoRequest, spec: ModelSpec) -> dict[str, Any]:
    """The DashScope create body for `request` on `spec` (API.md §2)."""
    width, height = request.size
    params: dict[str, Any] = {
        "resolution": "720P" if width * height <= TIER_SPLIT else "1080P",
        "duration": request.seconds,
        **request.extras,
    }
    if spec.family in (TaskFamily.T2V, TaskFamily.R2V):
        params["ratio"] = nearest_ratio(width, height)
    media = []
    if request.reference is not None:
        kind = "first_frame" if spec.family == TaskFamily.I2V else "reference_image"
        media.append({"type": kind, "url": request.reference})
    return {"model": spec.name, "input": {"prompt": request.prompt, "media": media}, "parameters": params}


def nearest_ratio(width: int, height: int) -> str:
    """The DashScope ratio closest to width:height (on a log scale, so 2:1 and 1:2 are as far)."""

    def distance(ratio: str) -> float:
        num, den = ratio.split(":")
        return abs(math.log(width / height) - math.log(int(num) / int(den)))

    return min(RATIOS, key=distance)


def _request(
    prompt: Any, model: Any, seconds: Any, size: Any, reference: str | None, extras: dict[str, Any]
) -> VideoRequest:
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid("prompt is required.", "prompt")
    if model is not None and not isinstance(model, str):
        raise _invalid("model must be a string.", "model")
    return VideoRequest(prompt, model or None, _seconds(seconds), _size(size), reference, extras)


def _seconds(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_SECONDS
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not is_decimal(text) or not MIN_SECONDS <= int(text) <= MAX_SECONDS:
        raise _invalid(
            f"seconds must be a whole number from {MIN_SECONDS} to {MAX_SECONDS}, got {value!r}.", "seconds"
        )
    return int(text)


def _size(value: Any) -> tuple[int, int]:
    if value is None or value == "":
        return DEFAULT_SIZE
    width, sep, height = str(value).lower().partition("x") if isinstance(value, str) else ("", "", "")
    if not (sep and is_decimal(width) and is_decimal(height)) or not (
        0 < int(width) <= MAX_SIDE and 0 < int(height) <= MAX_SIDE
    ):
        raise _invalid(f"size must be WIDTHxHEIGHT (such as 1280x720), got {value!r}.", "size")
    return int(width), int(height)


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{param} must be a non-empty string.", param)
    return value.strip()


def _form_int(value: str, param: str) -> int:
    if not is_decimal(value.strip()) or len(value.strip()) > 10:
        raise _invalid(f"{param} must be a non-negative integer, got {value!r}.", param)
    return int(value)


def _form_bool(value: str, param: str) -> bool:
    if value.strip().lower() not in ("true", "false"):
        raise _invalid(f"{param} must be true or false, got {value!r}.", param)
    return value.strip().lower() == "true"


def is_decimal(text: str) -> bool:
    """ASCII digits only (`str.isdigit` also takes `¹` and `٣`, which `int` refuses or reads)."""
    return text.isascii() and text.isdigit()


def _creates(spec: ModelSpec) -> bool:
    return spec.endpoint == Endpoint.VIDEO_GENERATION and spec.family != TaskFamily.VIDEO_EDIT


def _invalid(message: str, param: str) -> InvalidParameter:
    return InvalidParameter(message, param=param)
