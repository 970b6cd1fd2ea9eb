"""The DashScope wire format (server/api/schemas): API.md §2's size table and prompt rule, create
parsing, the usage body, task times and the list query."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest

from model.registry import default_registry
from server.api import schemas
from server.errors import InvalidParameter
from server.jobs.job import JobSpec, TaskStatus

REGISTRY = default_registry()

# API.md §2, the published table.
PUBLISHED = {
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


@pytest.mark.parametrize(("tier_ratio", "size"), PUBLISHED.items())
def test_published_sizes(tier_ratio: tuple[str, str], size: tuple[int, int]) -> None:
    assert schemas.output_size(*tier_ratio) == size


@pytest.mark.parametrize("tier", ["720P", "1080P"])
@pytest.mark.parametrize(("ratio", "source"), [("4:5", None), ("21:9", None), (None, (3000, 2000))])
def test_other_sizes_keep_the_pixel_count_in_multiples_of_16(
    tier: str, ratio: str | None, source: tuple[int, int] | None
) -> None:
    width, height = schemas.output_size(tier, ratio, source)
    assert width % 16 == 0 and height % 16 == 0
    target = schemas.TIER_PIXELS[tier]
    assert abs(width * height - target) / target < 0.03
    num, den = source if source else map(int, (ratio or "16:9").split(":"))
    assert abs(width / height - num / den) < 0.03


@pytest.mark.parametrize(
    ("prompt", "kept"),
    [
        ("a" * 5000, 5000),
        ("a" * 5001, 5000),
        ("马" * 2500, 2500),  # a CJK character counts 2 units
        ("马" * 2501, 2500),
        ("a" + "马" * 2500, 2500),  # 1 + 4998 units, the next character would make 5001
        ("ab" * 10_000_000, 5000),  # cut without scanning twenty million characters
    ],
)
def test_prompt_is_cut_at_5000_units(prompt: str, kept: int) -> None:
    assert len(schemas.truncate_prompt(prompt)) == kept


def create(model: str, **parts: Any) -> schemas.CreateRequest:
    return schemas.parse_create({"model": model, **parts}, REGISTRY[model])


def test_create_defaults_and_sdk_extras() -> None:
    parsed = create(
        "happyhorse-1.0-t2v",
        input={"prompt": "a horse", "extend_prompt": True, "function": "video-synthesis"},
        parameters={"prompt_extend": True},
    )
    assert (parsed.resolution, parsed.ratio, parsed.duration, parsed.watermark, parsed.seed) == (
        "1080P",
        "16:9",
        5,
        True,
        None,
    )
    i2v = create(
        "happyhorse-1.0-i2v",
        input={"prompt": None, "img_url": "https://x/a.png"},
        parameters={"ratio": "1:1"},
    )
    assert i2v.ratio is None and [m.type for m in i2v.media] == [schemas.MediaKind.FIRST_FRAME]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"duration": float("nan")}, "parameters.duration must be an integer, got NaN"),
        ({"seed": float("inf")}, "parameters.seed must be an integer, got Infinity"),
        ({"duration": 4.5}, "parameters.duration must be an integer"),
        ({"seed": 2**31}, "parameters.seed must be between 0 and 2147483647"),
        ({"resolution": "480P"}, "parameters.resolution must be one of 720P, 1080P"),
    ],
)
def test_create_refusals_name_the_field(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace(".", r"\.")):
        create("happyhorse-1.0-t2v", input={"prompt": "x"}, parameters=parameters)


def spec(**changes: Any) -> JobSpec:
    values: dict[str, Any] = {
        "model": "happyhorse-1.0-t2v",
        "family": "t2v",
        "prompt": "p",
        "width": 1280,
        "height": 720,
        "duration_s": 5.0,
        "seed": 1,
        "watermark": True,
        "resolution": "720P",
        "ratio": "16:9",
    }
    return JobSpec(**{**values, **changes})


def test_usage_bodies() -> None:
    assert schemas.usage_body(spec()) == {
        "duration": 5,
        "input_video_duration": 0,
        "output_video_duration": 5,
        "video_count": 1,
        "SR": 720,
        "ratio": "16:9",
    }
    assert "ratio" not in schemas.usage_body(spec(family="i2v", ratio=None, resolution="1080P"))
    edit = schemas.usage_body(
        spec(family="video-edit", ratio=None, duration_s=7.5, input_video_duration_s=7.5)
    )
    assert edit == {
        "duration": 15.0,
        "input_video_duration": 7.5,
        "output_video_duration": 7.5,
        "video_count": 1,
        "SR": 720,
    }


NOW = 1_800_000_000.0


def test_list_query_defaults_to_the_last_day() -> None:
    query = schemas.parse_list_query({}, None, NOW)
    assert (query.page_no, query.page_size) == (1, 10)
    assert (query.filters.start_time, query.filters.end_time) == (NOW - 86_400, NOW)
    filtered = schemas.parse_list_query(
        {"status": "RUNNING", "model_name": "m", "page_size": "100"}, "ws", NOW
    )
    assert (filtered.filters.status, filtered.filters.model, filtered.filters.workspace) == (
        TaskStatus.RUNNING,
        "m",
        "ws",
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page_size": "101"}, "page_size must be between 1 and 100"),
        ({"page_no": "x"}, "page_no must be an integer"),
        ({"status": "DONE"}, "status must be one of"),
        ({"start_time": "2026-01-01"}, "start_time must be formatted as YYYYMMDDhhmmss"),
        ({"start_time": "20260101000000", "end_time": "20260103000000"}, "must not exceed 24 hours"),
        ({"start_time": "20260102000000", "end_time": "20260101000000"}, "must not be earlier"),
    ],
)
def test_list_query_refusals(query: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        schemas.parse_list_query(query, None, NOW)


def test_task_times_read_as_beijing_time_to_the_millisecond() -> None:
    assert schemas.format_time(0.0) == "1970-01-01 08:00:00.000"
    assert schemas.format_time(1764547199.9995) == "2025-12-01 07:59:59.999"
    # Past the last millisecond, a time rounds into the next second exactly as datetime does.
    assert schemas.format_time(1764547199.9999996) == "2025-12-01 08:00:00.000"
    rng = random.Random(7)
    times = [rng.uniform(0, 4e9) for _ in range(20_000)] + [
        round(rng.uniform(1.6e9, 1.9e9), 6) for _ in range(20_000)
    ]
    for ts in times:
        local = datetime.fromtimestamp(ts, schemas.BEIJING)
        assert schemas.format_time(ts) == f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}", ts
