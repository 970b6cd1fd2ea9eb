"""A processor-sharing resource for SimPy: cores shared evenly by whatever runs at the moment.

SimPy's resources queue requests (first come, first served); paddock's threads do not queue for
cores, they all run and slow each other down. `SharedProcessor(env, capacity)` models that: each
of n active activities advances at min(1, capacity / n) times its own full speed, so an activity
that takes w seconds alone takes longer whenever more than `capacity` run beside it.
"""

from __future__ import annotations

import itertools

import simpy

_DONE = 1e-9


class SharedProcessor:
    """`yield processor.run(seconds)` takes `seconds` alone, longer when shared."""

    def __init__(self, env: simpy.Environment, capacity: float) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.env = env
        self.capacity = capacity
        self._active: dict[int, tuple[float, simpy.Event]] = {}
        self._ids = itertools.count()
        self._last = 0.0
        self._generation = 0
        self.busy_s = 0.0  # integral of min(active, capacity) over time: the utilisation numerator

    @property
    def active(self) -> int:
        return len(self._active)

    def run(self, seconds: float) -> simpy.Event:
        """An event that fires when `seconds` of full-speed work are done."""
        event = self.env.event()
        if seconds <= 0:
            event.succeed()
            return event
        self._advance()
        self._active[next(self._ids)] = (seconds, event)
        self._reschedule()
        return event

    def _speed(self) -> float:
        return min(1.0, self.capacity / len(self._active)) if self._active else 0.0

    def _advance(self) -> None:
        elapsed = self.env.now - self._last
        self._last = self.env.now
        if elapsed <= 0 or not self._active:
            return
        done = elapsed * self._speed()
        self.busy_s += elapsed * min(len(self._active), self.capacity)
        self._active = {k: (left - done, ev) for k, (left, ev) in self._active.items()}

    def _reschedule(self) -> None:
        self._generation += 1
        if not self._active:
            return
        generation = self._generation
        soonest = min(left for left, _ in self._active.values()) / self._speed()
        timer = self.env.timeout(max(soonest, 0.0))
        timer.callbacks.append(lambda _event: self._on_timer(generation))

    def _on_timer(self, generation: int) -> None:
        if generation != self._generation:
            return  # the set of activities changed since this timer was set
        self._advance()
        finished = [k for k, (left, _) in self._active.items() if left <= _DONE * (1 + self.env.now)]
        for key in finished:
            _, event = self._active.pop(key)
            event.succeed()
        self._reschedule()
