"""An ASGI app served by a real uvicorn on a free port, in a thread, for wire-level tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serving(app: Any, *, http: type | str = "auto") -> Iterator[int]:
    """Serve `app` with uvicorn's protocol `http` until the block ends; yields the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def exchange(port: int, *requests: bytes, timeout_s: float = 20.0) -> list[bytes]:
    """Send `requests` one after another on ONE connection; the raw answer to each ("" once the
    server has closed the connection)."""
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as conn:
        reader = conn.makefile("rb")
        for request in requests:
            try:
                conn.sendall(request)
                answers.append(_read_response(reader))
            except (ConnectionError, OSError):
                answers.append(b"")
    return answers


def _read_response(reader: Any) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = reader.read(1)
        if not byte:
            return head
        head += byte
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + reader.read(length)
