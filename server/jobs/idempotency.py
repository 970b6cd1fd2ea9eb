"""Idempotent submits: a client's `Idempotency-Key` bound to the task it created.

`TaskQueue.submit(record, idempotency=...)` decides, atomically with storing the record, whether
the key is new (the record is stored and the key bound to it), a replay (the same key and the same
request: the task already bound is returned and nothing is stored) or a reuse for a different
request (`IdempotencyMismatch`). Keys are per tenant and live `ttl_s`, never longer than the task
they point at; deleting the task frees its key.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class IdempotencyKey:
    """An `Idempotency-Key` header and a fingerprint of what the request asked for."""

    key: str
    fingerprint: str
    ttl_s: int

    @property
    def digest(self) -> str:
        """The key as a fixed-length, storage-safe name (clients may send any printable text)."""
        return hashlib.sha256(self.key.encode()).hexdigest()


class IdempotencyMismatch(Exception):
    """The key is bound to `task_id`, created by a different request."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id


@dataclass
class _Binding:
    task_id: str
    fingerprint: str
    expires_at: float


class IdempotencyTable:
    """The memory backend's bindings, (tenant, key digest) → task. Callers hold the event loop
    between `bound` and `bind`, which is what makes the check-then-bind atomic there."""

    def __init__(self) -> None:
        # Insertion order is about expiry order (one TTL for all), so pruning pops from the front.
        self._bindings: dict[tuple[str, str], _Binding] = {}
        self._by_task: dict[str, tuple[str, str]] = {}

    def bound(self, tenant: str, key: IdempotencyKey) -> tuple[str, str] | None:
        """The (task id, fingerprint) `key` is bound to, or None."""
        binding = self._bindings.get((tenant, key.digest))
        if binding is None or binding.expires_at <= time.time():
            return None
        return binding.task_id, binding.fingerprint

    def bind(self, tenant: str, key: IdempotencyKey, task_id: str, *, expires_at: float) -> None:
        """Bind `key` to `task_id` until `ttl_s` from now or `expires_at`, whichever is first."""
        self._prune()
        name = (tenant, key.digest)
        self._bindings.pop(name, None)
        self._bindings[name] = _Binding(task_id, key.fingerprint, min(time.time() + key.ttl_s, expires_at))
        self._by_task[task_id] = name

    def release(self, task_id: str) -> None:
        """Forget the key bound to `task_id` (the task was deleted)."""
        name = self._by_task.pop(task_id, None)
        if name is not None and (binding := self._bindings.get(name)) and binding.task_id == task_id:
            del self._bindings[name]

    def _prune(self) -> None:
        now = time.time()
        while self._bindings:
            name, binding = next(iter(self._bindings.items()))
            if binding.expires_at > now:
                return
            del self._bindings[name]
            self._by_task.pop(binding.task_id, None)
