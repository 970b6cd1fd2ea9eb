"""The web UI served by the facade at `/`: a playground for the generator and a task console.

Plain HTML, CSS and JavaScript modules shipped in `static/` (no build step, no third-party
requests); the page talks to the public DashScope API with the user's key, like any client.
"""

from __future__ import annotations

from server.api.web.console import Console
from server.api.web.routes import router

__all__ = ["Console", "router"]
