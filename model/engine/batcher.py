"""StepBatcher: which running jobs share a transformer forward at this step. Pure Python."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class StepBatcher(Generic[T]):
    """Groups jobs by a compatibility key and cuts each group into batches under a token budget.

    Every job lands in exactly one batch per step, so each running job advances one step per
    engine iteration whatever the load. Within a group the order of arrival is kept, so batch
    composition (and therefore float rounding) is stable from step to step.
    """

    def __init__(self, key: Callable[[T], Hashable], cost: Callable[[T], int]) -> None:
        self._key = key
        self._cost = cost

    def plan(self, jobs: Sequence[T], budget: Callable[[T], int]) -> list[list[T]]:
        """Batches for one step. `budget(job)` is the token cap of the job's group; a job whose
        cost alone exceeds it still runs, alone."""
        groups: dict[Hashable, list[T]] = {}
        for job in jobs:
            groups.setdefault(self._key(job), []).append(job)
        batches: list[list[T]] = []
        for members in groups.values():
            cap = budget(members[0])
            current: list[T] = []
            used = 0
            for job in members:
                cost = self._cost(job)
                if current and used + cost > cap:
                    batches.append(current)
                    current, used = [], 0
                current.append(job)
                used += cost
            batches.append(current)
        return batches
