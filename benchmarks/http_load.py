"""A small closed-loop HTTP/1.1 load client for the facade benchmark: raw asyncio streams, one
keep-alive connection per worker, so the client costs far less per request than the servers it
measures (an httpx client would be the bottleneck itself on a 2-core machine)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    server_cpu_s: float | None = None  # CPU the server process used meanwhile, when known

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")

    def line(self) -> str:
        bad = sum(n for status, n in self.statuses.items() if status != 200)
        cpu = (
            ""
            if self.server_cpu_s is None
            else f" server-cpu={self.server_cpu_s / len(self.latencies) * 1000:.3f}ms/req"
        )
        return (
            f"{self.name:<17} requests={len(self.latencies):<7} throughput={self.throughput:9.1f} req/s "
            f"p50={self.percentile(0.5) * 1000:7.2f}ms p99={self.percentile(0.99) * 1000:7.2f}ms "
            f"failed={bad}{cpu}"
        )


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(
        (int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0
    )
    return status, await reader.readexactly(length)


async def run_closed_loop(
    name: str,
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    concurrency: int,
    seconds: float | None = None,
    requests: int | None = None,
    keep_bodies: bool = False,
) -> LoadResult:
    """`concurrency` connections each sending the next request as soon as the last answered, for
    `seconds` or until `requests` were sent in all. `make_request(i)` builds request i's bytes."""
    result = LoadResult(name, 0.0)
    counter = iter(range(requests if requests is not None else 1 << 62))
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else float("inf")

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in counter:
                if time.perf_counter() >= deadline:
                    return
                sent = time.perf_counter()
                status, body = await _exchange(reader, writer, make_request(i))
                result.latencies.append(time.perf_counter() - sent)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if keep_bodies:
                    result.bodies.append(body)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result
