"""What a real redis-server makes of the arguments a deployment file gives it."""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.live_server import free_port


def redis_bytes(quantity: str) -> int:
    """Redis's memory units: k, m, g are powers of 1000; kb, mb, gb powers of 1024."""
    match = re.fullmatch(r"(\d+)([kmg])(b?)", quantity.lower())
    assert match, quantity
    number, unit, binary = match.groups()
    return int(number) * (1024 if binary else 1000) ** ("kmg".index(unit) + 1)


@contextmanager
def redis_server_with(args: list[str]) -> Iterator[str]:
    """redis-server started with a deployment's `args` (its --dir moved to a temp folder) on a
    free local port; yields its URL."""
    args = list(args)
    with tempfile.TemporaryDirectory() as tmp:
        if "--dir" in args:
            args[args.index("--dir") + 1] = tmp
        port = free_port()
        proc = subprocess.Popen(
            ["redis-server", *args, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        try:
            _wait_listening(port, proc)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def redis_config_with(args: list[str]) -> dict[str, str]:
    """The settings redis-server runs with when started with `args`."""
    with redis_server_with(args) as url:
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1)
        try:
            return {k: str(v) for k, v in client.config_get("*").items()}
        finally:
            client.close()


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"redis-server refused its arguments (exit {proc.returncode})"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("redis-server did not listen")
