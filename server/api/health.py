"""`GET /healthz` (the process is up) and `GET /readyz` (the queue answers and, in `paddock serve`,
the in-process worker has warmed up)."""

from __future__ import annotations

from typing import Protocol, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api import openapi
from server.jobs.base import TaskQueue


class Warmable(Protocol):
    """A worker as readiness sees it."""

    @property
    def ready(self) -> bool: ...


class Readiness:
    """What `/readyz` checks: the queue, and the in-process worker when there is one."""

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self.worker: Warmable | None = None

    async def checks(self) -> dict[str, bool]:
        """Each check by name; all true means ready."""
        try:
            queue_ok = bool(await self.queue.ping())
        except Exception:
            queue_ok = False
        checks = {"queue": queue_ok}
        if self.worker is not None:
            checks["worker"] = self.worker.ready
        return checks


router = APIRouter()


def readiness(request: Request) -> Readiness:
    """The health area's object."""
    return cast(Readiness, request.app.state.health)


@router.get("/healthz", response_model=None, responses={200: {"model": openapi.HealthResponse}})
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={200: {"model": openapi.ReadyResponse}, 503: {"model": openapi.ReadyResponse}},
)
async def readyz(request: Request) -> JSONResponse:
    """The queue is reachable and, when this process runs a worker, the worker is ready."""
    checks = await readiness(request).checks()
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
