"""An in-process facade for tests: settings with two tenants, the app's lifespan around an httpx
client, request headers, and the check of a DashScope error answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from server.config import Settings

ALICE, BOB = "sk-alice", "sk-bob"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "storage_url": f"file://{tmp_path / 'data'}",
        "api_keys": f"{ALICE},{BOB}",
        "public_url": "http://testserver",
    }
    return Settings(**{**values, **overrides})


class facade:
    """Runs the app's lifespan and gives an httpx client bound to it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._lifespan = app.router.lifespan_context(app)

    async def __aenter__(self) -> httpx.AsyncClient:
        await self._lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(*exc)


def headers(key: str = ALICE, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable", **extra}


def assert_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"request_id", "code", "message"}, body
    assert body["code"] == code, body
    assert body["request_id"]
    if message is not None:
        assert message in body["message"], body
    return body
