"""Effect reports of a campaign in the console: HTML, JSON, CSV."""

from __future__ import annotations

from nudge_app.reports.routes import bp

__all__ = ["bp"]
