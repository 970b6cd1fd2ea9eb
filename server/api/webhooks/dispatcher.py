"""The delivery loop: claim due deliveries from the outbox, POST each through the address guard,
then mark it delivered, due again after a backoff, or dead.

Every facade runs one (`create_app`'s lifespan): it is I/O only and torch-free. The outbox's lease
keeps two facades from posting the same delivery at once; one that dies mid-POST leaves the lease
to run out and another facade tries again, so a receiver sees every final state at least once,
each attempt with the same `webhook-id`.

The body is `{"type": "task.succeeded" | "task.failed" | "task.canceled", "timestamp", "data"}`,
`data` being the DashScope query body of the task (API.md §3), the same whichever surface made it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from server.api import schemas
from server.api.webhooks.signature import signature_headers
from server.config import Settings
from server.errors import DashScopeError, InvalidURL
from server.jobs.base import TaskQueue
from server.jobs.job import TaskRecord
from server.jobs.outbox import Delivery
from server.keys import KeyRing
from server.metrics import MetricsRecorder
from server.netguard import (
    AddressGuard,
    Resolver,
    checked_ips,
    guarded_client,
    parse_target,
    pinned_request,
    system_resolver,
)

log = logging.getLogger(__name__)

CLAIM_COUNT = 16  # deliveries one facade posts at once
USER_AGENT = "paddock-webhooks/0.1"
FIELD = "webhook_url"


def webhook_guard(settings: Settings) -> AddressGuard:
    """Where webhooks may go: public addresses, plus what the operator allows for media fetches
    (`PADDOCK_MEDIA_ALLOW_*`) or for webhooks alone (`PADDOCK_WEBHOOK_ALLOW_*`)."""
    hosts = f"{settings.media_allow_hosts},{settings.webhook_allow_hosts}".split(",")
    return AddressGuard(
        allow_private=settings.media_allow_private or settings.webhook_allow_private,
        allow_hosts=[h.strip() for h in hosts if h.strip()],
    )


def event_body(record: TaskRecord, video_url: str | None, now: float) -> bytes:
    """The JSON a receiver gets for `record`'s final state."""
    event = {
        "type": f"task.{record.status.value.lower()}",
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        "data": schemas.task_body(record.request_id, record, video_url),
    }
    return json.dumps(event, separators=(",", ":")).encode()


class _Failed(Exception):
    """One attempt failed in a way a later attempt may not (a status, a timeout, no connection)."""


class WebhookDispatcher:
    """Delivers the outbox of `queue`, signing with the keys' `webhook_secret`s."""

    def __init__(
        self,
        queue: TaskQueue,
        keys: KeyRing,
        settings: Settings,
        metrics: MetricsRecorder,
        *,
        video_url: Callable[[TaskRecord], str | None],
        resolver: Resolver | None = None,
    ) -> None:
        self.queue = queue
        self.outbox = queue.webhooks
        self.keys = keys
        self.settings = settings
        self.metrics = metrics
        self._video_url = video_url
        self._guard = webhook_guard(settings)
        self._resolver = resolver or system_resolver
        self._client = guarded_client(settings.webhook_timeout_s)
        # Long enough for a POST to every address of a host; then another facade may take over.
        self._lease_s = max(30.0, 3 * settings.webhook_timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def run_forever(self) -> None:
        """Deliver what is due; when nothing was, wait `webhook_poll_interval_s`."""
        while True:
            try:
                if await self.deliver_due():
                    continue
            except Exception:
                log.exception("webhook delivery loop failed; retrying")
            await asyncio.sleep(self.settings.webhook_poll_interval_s)

    async def deliver_due(self) -> int:
        """Claim and attempt the deliveries that are due now; returns how many."""
        claimed = await self.outbox.claim(count=CLAIM_COUNT, lease_s=self._lease_s)
        outcomes = await asyncio.gather(*(self.attempt(d) for d in claimed), return_exceptions=True)
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Its lease runs out and a later pass (here or in another facade) tries again.
                log.error("webhook attempt crashed", exc_info=outcome, extra={"task_id": delivery.task_id})
        return len(claimed)

    async def attempt(self, delivery: Delivery) -> str:
        """One attempt at `delivery`; returns its outcome (a `paddock_webhook_deliveries_total` label)."""
        record = await self.queue.get(delivery.task_id)
        secret = self.keys.webhook_secret(delivery.tenant)
        seconds: float | None = None
        if record is None:
            outcome, reason = "gone", "the task was deleted or has expired"
            await self.outbox.succeeded(delivery)  # nothing left to announce
        elif secret is None:
            outcome, reason = "dead", "the tenant's keys have no webhook_secret"
            await self.outbox.dead_letter(delivery, reason=reason)
        else:
            started = time.perf_counter()
            outcome, reason = await self._attempt_post(delivery, record, secret)
            seconds = None if outcome == "refused" else time.perf_counter() - started
        self.metrics.observe_webhook(outcome, seconds)
        extra: dict[str, object] = {
            "task_id": delivery.task_id,
            "attempt": delivery.attempt,
            "reason": reason,
        }
        if seconds is not None:
            extra["duration_s"] = round(seconds, 4)
        level = logging.INFO if outcome == "delivered" else logging.WARNING
        log.log(level, "webhook %s", outcome, extra=extra)
        return outcome

    async def _attempt_post(self, delivery: Delivery, record: TaskRecord, secret: str) -> tuple[str, str]:
        """POST, then settle the delivery in the outbox; (outcome, reason)."""
        try:
            status = await self._post(delivery, record, secret)
        except InvalidURL as exc:
            # The guard refused the address: no later attempt would fare better.
            await self.outbox.dead_letter(delivery, reason=exc.message)
            return "refused", exc.message
        except (_Failed, DashScopeError, httpx.HTTPError) as exc:
            reason = str(exc) or type(exc).__name__
            return await self._failed(delivery, reason), reason
        await self.outbox.succeeded(delivery)
        return "delivered", f"HTTP {status}"

    async def _failed(self, delivery: Delivery, reason: str) -> str:
        """Schedule the next attempt, or give up after `webhook_max_attempts`."""
        if delivery.attempt >= self.settings.webhook_max_attempts:
            await self.outbox.dead_letter(
                delivery, reason=f"{delivery.attempt} attempts failed; last: {reason}"
            )
            return "dead"
        await self.outbox.retry(delivery, delay_s=self.backoff_s(delivery.attempt))
        return "retry"

    def backoff_s(self, attempt: int) -> float:
        """The wait after failed attempt `attempt` (1-based): doubling from `webhook_backoff_s`, up to
        `webhook_backoff_max_s`, with ±10 % jitter so that many failures do not retry in step."""
        base = self.settings.webhook_backoff_s * 2.0 ** (attempt - 1)
        return float(min(self.settings.webhook_backoff_max_s, base)) * random.uniform(0.9, 1.1)

    async def _post(self, delivery: Delivery, record: TaskRecord, secret: str) -> int:
        """POST the signed event to a checked address of the URL's host; its status, if 2xx."""
        target = parse_target(delivery.url, FIELD)
        ips = await checked_ips(target, self._guard, self._resolver, field=FIELD)
        now = time.time()
        body = event_body(record, self._video_url(record), now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(secret, delivery.id, int(now), body),
        }
        last_error: httpx.ConnectError | None = None
        for ip in ips:
            request = pinned_request(self._client, "POST", target, ip, headers=headers, content=body)
            try:
                response = await self._client.send(request)
            except httpx.ConnectError as exc:
                last_error = exc  # the host's next address
                continue
            if not 200 <= response.status_code < 300:
                raise _Failed(f"HTTP {response.status_code}")
            return response.status_code
        raise _Failed(f"could not connect to {target.host}") from last_error
