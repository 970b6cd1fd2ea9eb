"""`Console`: what the web UI's routes need, as the facade's one object for the web area."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model.registry import ModelSpec
    from server.config import Settings
    from server.jobs.base import TaskQueue


@dataclass(frozen=True)
class Console:
    """The settings (for the page's headers), the served models, and the queue the operators'
    view reads."""

    settings: Settings
    registry: dict[str, ModelSpec]
    queue: TaskQueue
