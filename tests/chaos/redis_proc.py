"""A redis-server the chaos tests can stop and restart on the same port and data dir (AOF on)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.redis_server import _free_port

REDIS_BIN = "/usr/bin/redis-server"


class RedisProcess:
    """One redis-server with `appendonly yes` + `appendfsync always`: a restart loses nothing."""

    def __init__(self, data_dir: Path, *, port: int | None = None, binary: str = REDIS_BIN) -> None:
        self.data_dir = data_dir
        self.port = port or _free_port()
        self.binary = binary
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    def start(self, timeout_s: float = 10.0) -> None:
        """Start (or restart) the server and wait until it answers PING with its data loaded."""
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        cmd += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        cmd += ["--maxmemory-policy", "noeviction", "--loglevel", "warning"]
        with (self.data_dir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if client.ping():  # answers LOADING (an error) until the AOF is replayed
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server on {self.port} did not start")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: with appendfsync always, every acknowledged write is already on disk."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_s: float = 0.0) -> float:
        """Kill, stay down `down_s`, start again; returns the seconds Redis was unreachable."""
        started = time.monotonic()
        self.kill()
        time.sleep(down_s)
        self.start()
        return time.monotonic() - started

    def stop(self) -> None:
        """Terminate gracefully (waits for the process)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
