"""The DashScope wire pieces a load test needs: the create request, the poll, and the phase times.

Pure Python (no Locust, no project imports), so tests check it without a load tool installed.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
TASK_PATH = "/api/v1/tasks/{task_id}"
# Locust groups every poll under this name, so the stats table has one row, not one per task.
TASK_NAME = "/tasks/[id]"
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})
# API.md §1: task times are "YYYY-MM-DD HH:mm:ss.SSS" (UTC+8; only differences are used here).
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class JobParams:
    """What every submitted job asks for; one fixed shape keeps the service time comparable."""

    model: str = "happyhorse-1.0-t2v"
    prompt: str = "a horse gallops across a meadow at sunset"
    resolution: str = "720P"
    duration: int = 3
    seed: int | None = None


@dataclass(frozen=True)
class PhaseTimes:
    """Seconds a finished task spent waiting in the queue and running (None when not reported)."""

    queue_wait_s: float | None
    service_s: float | None


def create_headers(api_key: str) -> dict[str, str]:
    """Headers of an asynchronous DashScope create (API.md §1)."""
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "X-DashScope-Async": "enable",
    }


def poll_headers(api_key: str) -> dict[str, str]:
    """Headers of a task query."""
    return {"Authorization": f"Bearer {api_key}"}


def create_body(params: JobParams, index: int = 0) -> str:
    """The JSON body of a create. `index` varies the seed so identical requests are not cached."""
    parameters: dict[str, Any] = {"resolution": params.resolution, "duration": params.duration}
    parameters["seed"] = params.seed if params.seed is not None else index % 2_147_483_647
    body = {"model": params.model, "input": {"prompt": params.prompt}, "parameters": parameters}
    return json.dumps(body, separators=(",", ":"))


def task_output(payload: Any) -> dict[str, Any]:
    """The `output` object of a create or query response; {} when the body is not one."""
    if isinstance(payload, dict) and isinstance(payload.get("output"), dict):
        return payload["output"]
    return {}


def is_final(status: str | None) -> bool:
    """Whether a task status is final (no more polling)."""
    return status in FINAL_STATUSES


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        return None


def phase_times(output: dict[str, Any]) -> PhaseTimes:
    """Queue wait (submit → scheduled) and service (scheduled → end) from a final task's times."""
    submit = _parse_time(output.get("submit_time"))
    scheduled = _parse_time(output.get("scheduled_time"))
    end = _parse_time(output.get("end_time"))
    wait = (scheduled - submit).total_seconds() if submit and scheduled else None
    service = (end - scheduled).total_seconds() if scheduled and end else None
    return PhaseTimes(queue_wait_s=wait, service_s=service)


def is_loopback_host(base_url: str) -> bool:
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
