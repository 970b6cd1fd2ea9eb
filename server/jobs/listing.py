"""Listing tasks, shared by both queue backends: the filter rule, paging, and the in-process time
index that makes a page of the memory backend cost a page."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator

from server.jobs.base import TaskFilter
from server.jobs.job import TaskRecord

_LAST = "\U0010ffff"  # sorts after every task id: (t, _LAST) is past every entry at time t


def matches(record: TaskRecord, filters: TaskFilter) -> bool:
    """True when `record` passes every list filter."""
    return (
        filters.start_time <= record.submit_time <= filters.end_time
        and (filters.status is None or record.status == filters.status)
        and (filters.model is None or record.model == filters.model)
        and (filters.task_id is None or record.task_id == filters.task_id)
        and (filters.workspace is None or record.workspace == filters.workspace)
    )


def page_of(records: list[TaskRecord], page_no: int, page_size: int) -> list[TaskRecord]:
    """Slice one page (page_no starts at 1) out of an already ordered list."""
    start = max(page_no - 1, 0) * page_size
    return records[start : start + page_size]


class TimeIndex:
    """Per tenant, its task ids ordered by submit time; and every task in arrival order, so the
    oldest ones can be found for expiry without a scan."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, list[tuple[float, str]]] = {}
        self._arrivals: deque[tuple[float, str]] = deque()

    def add(self, tenant: str, submit_time: float, task_id: str) -> None:
        bisect.insort(self._by_tenant.setdefault(tenant, []), (submit_time, task_id))
        self._arrivals.append((submit_time, task_id))

    def remove(self, tenant: str, submit_time: float, task_id: str) -> None:
        index = self._by_tenant.get(tenant, [])
        at = bisect.bisect_left(index, (submit_time, task_id))
        if at < len(index) and index[at][1] == task_id:
            del index[at]

    def arrived_before(self, cutoff: float) -> Iterator[str]:
        """Ids of tasks that arrived with a submit time at or before `cutoff`, oldest first,
        forgotten by the index's arrival queue as they are handed out."""
        while self._arrivals and self._arrivals[0][0] <= cutoff:
            yield self._arrivals.popleft()[1]

    def _bounds(
        self, tenant: str, start: float, after: float, end: float
    ) -> tuple[list[tuple[float, str]], int, int]:
        index = self._by_tenant.get(tenant, [])
        first = max(bisect.bisect_left(index, (start, "")), bisect.bisect_right(index, (after, _LAST)))
        return index, first, max(first, bisect.bisect_right(index, (end, _LAST)))

    def window(self, tenant: str, start: float, after: float, end: float) -> list[str]:
        """The tenant's ids submitted in [start, end] and strictly after `after`, oldest first."""
        index, first, last = self._bounds(tenant, start, after, end)
        return [task_id for _, task_id in index[first:last]]

    def page(
        self,
        tenant: str,
        start: float,
        after: float,
        end: float,
        page_no: int,
        page_size: int,
        *,
        newest_first: bool,
    ) -> tuple[list[str], int]:
        """One page of `window` (two bisects and a slice: a page costs a page) and the window's size."""
        index, first, last = self._bounds(tenant, start, after, end)
        offset = (page_no - 1) * page_size
        if newest_first:
            chosen = index[max(first, last - offset - page_size) : max(first, last - offset)][::-1]
        else:
            chosen = index[min(last, first + offset) : min(last, first + offset + page_size)]
        return [task_id for _, task_id in chosen], last - first
