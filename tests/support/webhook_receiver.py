"""A real webhook receiver for tests: a local HTTP server that records every POST and answers each
with the next status of a script (then 204), and the Standard Webhooks check of what it got."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Received:
    """One POST as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def verified(self, secret: str) -> dict[str, Any]:
        """The event, after `standardwebhooks` checked its signature (raises if it does not match)."""
        payload = Webhook(secret).verify(self.body, self.headers)
        assert isinstance(payload, dict)
        return payload


@dataclass
class Receiver:
    url: str
    statuses: list[int]  # answers still to give, first first; 204 once empty
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{count} webhook POSTs expected, got {len(self.received)}")


@contextmanager
def receiving(statuses: list[int] | None = None) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 for the duration of the block."""
    receiver = Receiver(url="", statuses=list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(headers, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/paddock"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def event_of(received: Received, secret: str) -> dict[str, Any]:
    """`received`'s verified event, with its body parsed the way a receiver would."""
    event = received.verified(secret)
    assert json.loads(received.body) == event
    return event
