"""The DashScope wire pieces a load generator needs (API.md §1, §3), and nothing from paddock.

The load generator speaks HTTP only: these are the paths, headers, final states and the task
time format it must agree on with any DashScope-compatible server.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
TASK_PATH = "/api/v1/tasks/{task_id}"
POLICY_PATH = "/api/v1/uploads"
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})
# Task times are "YYYY-MM-DD HH:mm:ss.SSS" in UTC+8 (API.md §3).
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_UTC8 = timezone(timedelta(hours=8))


def auth_headers(api_key: str) -> dict[str, str]:
    """What a query, a policy request or a download needs."""
    return {"Authorization": f"Bearer {api_key}"}


def create_headers(api_key: str, *, oss_resolve: bool = False) -> dict[str, str]:
    """Headers of an asynchronous create; `oss_resolve` when a media URL is `oss://`."""
    headers = {**auth_headers(api_key), "Content-Type": "application/json", "X-DashScope-Async": "enable"}
    if oss_resolve:
        headers["X-DashScope-OssResourceResolve"] = "enable"
    return headers


def task_output(payload: Any) -> dict[str, Any]:
    """The `output` object of a create or query response; {} when the body is not one."""
    output = payload.get("output") if isinstance(payload, dict) else None
    return dict(output) if isinstance(output, dict) else {}


def is_final(status: str | None) -> bool:
    """Whether a task status is final (no more polling)."""
    return status in FINAL_STATUSES


def parse_task_time(value: Any) -> float | None:
    """Epoch seconds of a task time, or None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=_UTC8).timestamp()
    except ValueError:
        return None


def is_loopback_url(base_url: str) -> bool:
    """Whether `base_url` names this machine: load tests hit loopback unless told otherwise."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
