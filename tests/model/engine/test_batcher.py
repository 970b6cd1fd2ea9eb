"""StepBatcher: grouping by key, the token budget, and stable order."""

from __future__ import annotations

from dataclasses import dataclass

from model.engine.batcher import StepBatcher


@dataclass(frozen=True)
class Item:
    name: str
    key: str
    cost: int


def plan(items: list[Item], cap: int) -> list[list[str]]:
    batcher: StepBatcher[Item] = StepBatcher(key=lambda i: i.key, cost=lambda i: i.cost)
    return [[i.name for i in batch] for batch in batcher.plan(items, budget=lambda _: cap)]


def test_groups_by_key_keeping_arrival_order() -> None:
    items = [Item("a", "x", 1), Item("b", "y", 1), Item("c", "x", 1), Item("d", "y", 1)]
    assert plan(items, cap=100) == [["a", "c"], ["b", "d"]]


def test_budget_cuts_a_group_and_every_job_runs_once() -> None:
    items = [Item(str(i), "x", 40) for i in range(5)]
    batches = plan(items, cap=100)
    assert batches == [["0", "1"], ["2", "3"], ["4"]]
    assert sorted(n for b in batches for n in b) == [str(i) for i in range(5)]


def test_a_job_over_budget_runs_alone() -> None:
    assert plan([Item("big", "x", 500), Item("small", "x", 1)], cap=100) == [["big"], ["small"]]
