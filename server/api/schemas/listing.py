"""The list query (API.md §3 list): its parameters, time window and page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from server.api.schemas.create import BEIJING
from server.errors import InvalidParameter
from server.jobs.base import TaskFilter
from server.jobs.job import TaskRecord, TaskStatus

LIST_WINDOW_S = 24 * 3600  # the longest span a list query may cover


def parse_list_time(value: str, name: str) -> float:
    """`YYYYMMDDhhmmss` (UTC+8) to epoch seconds."""
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        raise InvalidParameter(f"{name} must be formatted as YYYYMMDDhhmmss, got {value!r}.") from None


@dataclass(frozen=True)
class ListQuery:
    """`GET /api/v1/tasks`'s query after the checks: the page and the queue's filters."""

    page_no: int
    page_size: int
    filters: TaskFilter
    oldest_first: bool = False  # DashScope lists newest first; the OpenAI surface may ask either


@dataclass(frozen=True)
class TaskPage:
    """One page of a tenant's tasks, newest first, and how many match in all."""

    records: list[TaskRecord]
    total: int
    page_no: int
    page_size: int


def parse_list_query(query: Mapping[str, str], workspace: str | None, now: float) -> ListQuery:
    """Check the list query (API.md §3 list): `page_no`, `page_size` (at most 100), `status`,
    `model_name`, `task_id`, and `start_time`/`end_time` as `YYYYMMDDhhmmss` (UTC+8; default the
    last 24 h, a longer span is a 400)."""
    page_no = _query_int(query.get("page_no"), "page_no", 1, 1_000_000)
    page_size = _query_int(query.get("page_size"), "page_size", 10, 100)
    end = parse_list_time(query["end_time"], "end_time") if query.get("end_time") else now
    start = (
        parse_list_time(query["start_time"], "start_time") if query.get("start_time") else end - LIST_WINDOW_S
    )
    if end < start:
        raise InvalidParameter("end_time must not be earlier than start_time.")
    if end - start > LIST_WINDOW_S:
        raise InvalidParameter("The time span between start_time and end_time must not exceed 24 hours.")
    status = query.get("status") or None
    if status is not None and status not in TaskStatus.__members__:
        raise InvalidParameter(f"status must be one of {', '.join(TaskStatus.__members__)}, got {status!r}.")
    filters = TaskFilter(
        start_time=start,
        end_time=end,
        status=TaskStatus(status) if status else None,
        model=query.get("model_name") or None,
        task_id=query.get("task_id") or None,
        workspace=workspace,
    )
    return ListQuery(page_no, page_size, filters)


def _query_int(value: str | None, name: str, default: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {value!r}.") from None
    if not 1 <= number <= high:
        raise InvalidParameter(f"{name} must be between 1 and {high}, got {number}.")
    return number
