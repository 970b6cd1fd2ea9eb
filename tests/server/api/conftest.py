"""An in-process facade (no worker) on the memory queue and a local store, with two tenants."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from server.api.app import create_app
from tests.support.facade import facade, make_settings


@pytest.fixture
def app_factory(tmp_path: Path) -> Callable[..., FastAPI]:
    def build(**overrides: Any) -> FastAPI:
        return create_app(make_settings(tmp_path, **overrides))

    return build


@pytest.fixture
async def client(app_factory: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with facade(app_factory()) as c:
        yield c


@pytest.fixture(scope="module")
def httpserver_url() -> Iterator[str]:
    """A real local HTTP server: `/missing.png` is a 404, `/ok.png` a valid PNG."""
    from tests.videos import make_image

    png = make_image(400, 300)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/ok.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
