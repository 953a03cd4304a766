"""The minute tick: fire due cron automations, then sweep (deadlines, waiting runs)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..bootstrap import container
from ..domain.clock import parse_iso
from ..services.tick import tick


def scheduled_minute(event) -> datetime | None:
    """The minute the scheduled event is for (so a tick that starts late skips nothing)."""
    raw = getattr(event, "time", None) or (event.get("time") if isinstance(event, dict) else None)
    try:
        return parse_iso(raw) if raw else None
    except ValueError:
        return None


def handle_tick(event=None) -> dict[str, Any]:
    """Fire due cron automations and sweep, for the minute the event is for."""
    return tick(container(), scheduled_minute(event))
