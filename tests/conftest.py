"""Shared pytest fixtures."""

from __future__ import annotations

# -- real redis-server + TaskQueue backends (tests/redis_server.py) -----------------------------
from tests.redis_server import make_queue, queue, queue_backend, redis_url  # noqa: F401
