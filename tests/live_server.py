"""Start `paddock serve` (what `make run` runs) as a real subprocess on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    api_url: str
    keys: list[str]
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def paddock_process(
    tmp: Path,
    *,
    command: str = "serve",
    env: dict[str, str] | None = None,
    keys: list[str] | None = None,
    wait_ready: bool = True,
    timeout_s: float = 120.0,
) -> Iterator[LiveServer]:
    """Run `paddock <command>` with its data in `tmp` until the block exits."""
    port = free_port()
    keys = keys or ["sk-test-alice", "sk-test-bob"]
    data_dir = tmp / "data"
    full_env = {
        **os.environ,
        "PADDOCK_HOST": "127.0.0.1",
        "PADDOCK_PORT": str(port),
        "PADDOCK_DATA_DIR": str(data_dir),
        "PADDOCK_STORAGE_URL": f"file://{data_dir}",
        "PADDOCK_API_KEYS": ",".join(keys),
        "PADDOCK_LOG_LEVEL": "INFO",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        **(env or {}),
    }
    log_path = tmp / f"paddock-{command}-{port}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", command],
            cwd=REPO,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    server = LiveServer(base, f"{base}/api/v1", keys, data_dir, proc, log_path)
    try:
        if wait_ready:
            _wait_ready(server, timeout_s)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(server: LiveServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"paddock exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"paddock was not ready after {timeout_s} s:\n{server.log()}")


@contextmanager
def sdk_pointed_at(server: LiveServer) -> Iterator[None]:
    """Point the dashscope SDK at `server` for the block (what a client changes: the base URL)."""
    import dashscope

    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = server.api_url
    try:
        yield
    finally:
        dashscope.base_http_api_url = previous
