"""A real, throwaway `redis-server` for tests.

Tests run against the real binary rather than fakeredis so that Lua scripts, stream consumer
groups and key expiry behave exactly as in production. `make test` installs the binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from server.jobs import TaskQueue, make_task_queue

INSTALL_HINT = "redis-server not found on PATH: `make test` installs it (apt-get install redis-server)."


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_ping(url: str, proc: subprocess.Popen[bytes], log_path: Path, deadline_s: float) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        while True:
            if proc.poll() is not None:
                log = Path(log_path).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited early with code {proc.returncode}:\n{log}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline_s:
                raise RuntimeError(f"redis-server at {url} did not answer PING in time")
            time.sleep(0.02)
    finally:
        client.close()


@contextmanager
def running_redis(binary: str | None = None, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Start `redis-server` on a free local port in a temp dir; yield its URL; stop it on exit.

    Persistence is off (`--save "" --appendonly no`): tests want a clean, fast, disposable server.
    """
    exe = binary or os.environ.get("PADDOCK_TEST_REDIS_SERVER") or shutil.which("redis-server")
    if exe is None and Path("/usr/bin/redis-server").exists():
        exe = "/usr/bin/redis-server"
    if exe is None or not Path(exe).is_file():
        raise RuntimeError(f"{INSTALL_HINT} (looked for {exe or 'redis-server'})")
    with tempfile.TemporaryDirectory(prefix="paddock-redis-") as tmp:
        port = _free_port()
        cmd = [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
            "--maxmemory-policy",
            "noeviction",
            "--loglevel",
            "warning",
        ]
        url = f"redis://127.0.0.1:{port}/0"
        with Path(tmp, "redis.log").open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            try:
                _wait_for_ping(url, proc, Path(log.name), time.monotonic() + start_timeout_s)
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# -- pytest fixtures (imported into tests/conftest.py) -------------------------------------------
QueueFactory = Callable[..., TaskQueue]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server for the whole session. Fails (never skips) if the binary is missing."""
    try:
        with running_redis() as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def queue_backend(request: pytest.FixtureRequest) -> str:
    """Which TaskQueue backend a contract test runs against."""
    return str(request.param)


@pytest.fixture
async def make_queue(queue_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[QueueFactory]:
    """Build queues of the current backend (`make_queue(ttl_s=...)`); redis is FLUSHDBed first.

    Each redis queue gets its own client (its own connections); all are closed at teardown."""
    url = "memory://"
    if queue_backend == "redis":
        url = request.getfixturevalue("redis_url")
        flush = redis.Redis.from_url(url)
        flush.flushdb()
        flush.close()
    made: list[TaskQueue] = []

    def factory(ttl_s: int = 86_400, stream_maxlen: int = 100_000) -> TaskQueue:
        made.append(make_task_queue(url, ttl_s=ttl_s, stream_maxlen=stream_maxlen))
        return made[-1]

    yield factory
    for queue in made:
        await queue.close()


@pytest.fixture
def queue(make_queue: QueueFactory) -> TaskQueue:
    """A fresh, empty queue of the current backend with the default 24 h TTL."""
    return make_queue()
