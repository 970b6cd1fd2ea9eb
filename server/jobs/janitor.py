"""The janitor: when a worker looks for claims whose worker died, and how long recovery takes.

A claimed job stays in the queue's pending list (the stream PEL for Redis) until its worker
acknowledges it. A live worker heartbeats every `heartbeat_interval(claim_timeout_s)` (XCLAIM
JUSTID resets the entry's idle time); a worker that was SIGKILLed, lost its host or its network
stops doing so, and once an entry has been idle for `claim_timeout_s` any worker may take it over
(XAUTOCLAIM with that min-idle): its next attempt starts, or it fails as a poison job.

Who runs it: every worker, inside `TaskQueue.claim`. A worker with a free slot sweeps first, so
an orphaned job goes before new work, and an idle worker sweeps again every `interval_s` while it
waits. The facade does not sweep: only a worker can run the job it takes over. Recovery time is
thus bounded by `claim_timeout_s + interval_s` plus the wait for a free slot somewhere.
"""

from __future__ import annotations

import time

HEARTBEATS_PER_TIMEOUT = 4


def heartbeat_interval(claim_timeout_s: float) -> float:
    """How often a running job heartbeats: four beats fit in one claim timeout, so a couple of
    slow or failed beats (a Redis restart) never make a live claim look dead."""
    return max(claim_timeout_s / HEARTBEATS_PER_TIMEOUT, 0.05)


class Janitor:
    """When the next sweep for timed-out claims is due (one per queue client)."""

    def __init__(self, claim_timeout_s: float) -> None:
        self.claim_timeout_s = claim_timeout_s
        self.interval_s = heartbeat_interval(claim_timeout_s)
        self._next_at = 0.0

    def due(self, *, first_pass: bool) -> bool:
        """True on the first pass of every claim call, and then every `interval_s`."""
        return first_pass or time.monotonic() >= self._next_at

    def swept(self, found: bool) -> None:
        """Record a sweep: one that found work is due again at once (more may be waiting)."""
        self._next_at = time.monotonic() + (0.0 if found else self.interval_s)
