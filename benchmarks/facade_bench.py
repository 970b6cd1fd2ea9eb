"""`paddock bench facade`: the facade's own capacity on a real redis-server.

One run, one machine: `--tasks` tasks (10,000) are submitted through the facade's create route
(submit throughput and latency), then task queries for random stored ids are timed against
`paddock api` and against a bare ASGI app doing only the same Redis read (HGETALL of the task's
hash, `benchmarks/facade_baseline.py`), both under uvicorn, alternating in `--rounds` rounds so
background noise hits both alike. The best round of each side is kept. Prints throughput and
p50/p99 latency; the last line is `query throughput ratio (paddock/baseline): X.XX`.

Needs a checkout (it starts redis-server the way the tests do) and `redis-server` on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.http_load import LoadResult, run_closed_loop

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-bench-facade"
CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
CREATE_BODY = json.dumps(
    {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}, "parameters": {"resolution": "720P"}}
).encode()
_RESULT = re.compile(r"^(submit|query)\s+paddock\s.*throughput=\s*([0-9.]+) req/s", re.M)


@contextmanager
def _redis() -> Iterator[str]:
    """tests/redis_server.py's throwaway redis-server, reused rather than copied."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.redis_server import running_redis

    with running_redis() as url:
        yield url


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(command: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[int]:
    """Run an HTTP server subprocess listening on `port` until the block exits."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited:\n{log.read_text()[-2000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{' '.join(command)} did not start") from None
                time.sleep(0.2)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (Linux /proc), or None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _create(i: int) -> bytes:
    return (
        f"POST {CREATE_PATH} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nX-DashScope-Async: enable\r\n"
        f"Content-Length: {len(CREATE_BODY)}\r\n\r\n"
    ).encode() + CREATE_BODY


def _query_maker(ids: Sequence[str], seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    requests = [
        f"GET /api/v1/tasks/{task_id} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n\r\n".encode()
        for task_id in ids
    ]
    return lambda _i: rng.choice(requests)


async def _measured(
    name: str, server: tuple[int, int], make: Callable[[int], bytes], **kw: Any
) -> LoadResult:
    """One closed-loop run against `server` (port, pid), with the server's CPU time per request."""
    port, pid = server
    before = cpu_seconds(pid)
    result = await run_closed_loop(name, "127.0.0.1", port, make, **kw)
    after = cpu_seconds(pid)
    result.server_cpu_s = after - before if after is not None and before is not None else None
    return result


async def _bench(
    args: argparse.Namespace, paddock: tuple[int, int], baseline: tuple[int, int]
) -> list[LoadResult]:
    kw: dict[str, Any] = {"concurrency": args.concurrency}
    submit = await _measured("submit  paddock", paddock, _create, requests=args.tasks, keep_bodies=True, **kw)
    ids = [
        json.loads(body)["output"]["task_id"] for body in submit.bodies if body.startswith(b'{"request_id"')
    ]
    if len(ids) < args.tasks:
        raise RuntimeError(f"only {len(ids)} of {args.tasks} submits succeeded: {submit.statuses}")
    best: dict[str, LoadResult] = {}
    for r in range(args.rounds):
        for name, server in (("query   paddock", paddock), ("query   baseline", baseline)):
            result = await _measured(name, server, _query_maker(ids, r), seconds=args.seconds, **kw)
            if name not in best or result.throughput > best[name].throughput:
                best[name] = result
    return [submit, best["query   paddock"], best["query   baseline"]]


def parse_output(text: str) -> tuple[float, float]:
    """(query, submit) requests per second of one paddock facade, from this benchmark's output."""
    found = dict((kind, float(value)) for kind, value in _RESULT.findall(text))
    if "query" not in found or "submit" not in found:
        raise ValueError("not the output of `paddock bench facade`")
    return found["query"], found["submit"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paddock bench facade", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks submitted (and stored) first")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each query measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating query rounds per side")
    parser.add_argument("--concurrency", type=int, default=32, help="client connections")
    args = parser.parse_args(argv)
    import uvloop

    paddock, baseline = _free_port(), _free_port()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="paddock-bench-facade-") as tmp:
        url = stack.enter_context(_redis())
        data = Path(tmp) / "data"
        facade_env = {
            "PADDOCK_HOST": "127.0.0.1",
            "PADDOCK_PORT": str(paddock),
            "PADDOCK_QUEUE_URL": url,
            "PADDOCK_API_KEYS": KEY,
            "PADDOCK_DATA_DIR": str(data),
            "PADDOCK_STORAGE_URL": f"file://{data}",
            "PADDOCK_MAX_QUEUE_DEPTH": "0",  # 10,000 PENDING tasks and nobody to run them
        }
        api = [sys.executable, "-m", "server", "api"]
        paddock_pid = stack.enter_context(_server(api, facade_env, Path(tmp) / "api.log", paddock))
        uvicorn = [sys.executable, "-m", "uvicorn", "benchmarks.facade_baseline:app", "--port", str(baseline)]
        uvicorn += ["--no-access-log", "--log-level", "warning"]
        baseline_env = {"PADDOCK_BASELINE_REDIS_URL": url}
        baseline_pid = stack.enter_context(
            _server(uvicorn, baseline_env, Path(tmp) / "baseline.log", baseline)
        )
        print(
            f"facade benchmark: {args.tasks} tasks on redis-server, {args.concurrency} connections, "
            f"{args.rounds} x {args.seconds:g} s per query side",
            flush=True,
        )
        submit, paddock_query, baseline_query = uvloop.run(
            _bench(args, (paddock, paddock_pid), (baseline, baseline_pid))
        )
    for result in (submit, paddock_query, baseline_query):
        print(result.line())
    p50_ratio = paddock_query.percentile(0.5) / baseline_query.percentile(0.5)
    print(f"query p50 latency ratio (paddock/baseline): {p50_ratio:.2f}")
    ratio = paddock_query.throughput / baseline_query.throughput
    print(f"query throughput ratio (paddock/baseline): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
