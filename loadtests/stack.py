"""A throwaway `paddock serve` for `paddock plan validate`: a subprocess on a free loopback port,
its data in a temporary folder, stopped (and its folder removed) when the block exits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

KEYS = ("sk-validate-a", "sk-validate-b")


@dataclass(frozen=True)
class LocalStack:
    base_url: str
    api_keys: tuple[str, ...]
    log_path: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_serve(slots: int, log_path: Path, *, ready_timeout_s: float = 180.0) -> Iterator[LocalStack]:
    """`paddock serve` with the tiny models, `slots` concurrent jobs, one torch thread per op
    (what the README advises for CPU workers); its log goes to `log_path`, which outlives it."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="paddock-validate-") as tmp:
        data = Path(tmp) / "data"
        env = {
            **os.environ,
            "PADDOCK_HOST": "127.0.0.1",
            "PADDOCK_PORT": str(port),
            "PADDOCK_DATA_DIR": str(data),
            "PADDOCK_STORAGE_URL": f"file://{data}",
            "PADDOCK_API_KEYS": ",".join(KEYS),
            "PADDOCK_MAX_CONCURRENT_JOBS": str(slots),
            "PADDOCK_LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
        }
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "server", "serve"], env=env, stdout=log, stderr=log
            )
        stack = LocalStack(f"http://127.0.0.1:{port}", KEYS, log_path)
        try:
            _wait_ready(stack, proc, ready_timeout_s)
            yield stack
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(stack: LocalStack, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"paddock serve exited with {proc.returncode}:\n{stack.log_path.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{stack.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"paddock serve was not ready after {timeout_s:.0f} s")
