"""Reading paddock's Prometheus metrics over HTTP, and the change between two readings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Reading:
    """Every sample of one or more /metrics pages, by (sample name, labels); pages are summed."""

    samples: dict[tuple[str, Labels], float]

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name` over every label set that contains `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def minus(self, earlier: Reading) -> Reading:
        """What happened in between (counters and histogram sums/counts only grow)."""
        return Reading({k: v - earlier.samples.get(k, 0.0) for k, v in self.samples.items()})

    def mean(self, histogram: str, **labels: str) -> float | None:
        """`_sum / _count` of a histogram, or None when nothing was observed."""
        count = self.total(f"{histogram}_count", **labels)
        return self.total(f"{histogram}_sum", **labels) / count if count > 0 else None


def parse(text: str) -> Reading:
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            samples[key] = samples.get(key, 0.0) + sample.value
    return Reading(samples)


async def scrape(client: httpx.AsyncClient, urls: Sequence[str]) -> Reading:
    """One reading over several /metrics pages (a facade and its workers), summed."""
    merged: dict[tuple[str, Labels], float] = {}
    for url in urls:
        response = await client.get(url)
        response.raise_for_status()
        for key, value in parse(response.text).samples.items():
            merged[key] = merged.get(key, 0.0) + value
    return Reading(merged)
