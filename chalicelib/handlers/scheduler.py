"""The minute tick: fire due cron automations, then sweep (deadlines, waiting runs)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..bootstrap import container
from ..domain.clock import parse_iso
from ..observability import logger
from ..services import sweeper
from ..services.cron import fire_due


def scheduled_minute(event) -> datetime | None:
    """The minute the scheduled event is for (so a tick that starts late skips nothing)."""
    raw = getattr(event, "time", None) or (event.get("time") if isinstance(event, dict) else None)
    try:
        return parse_iso(raw) if raw else None
    except ValueError:
        return None


def handle_tick(event=None) -> dict[str, Any]:
    """Run both halves; one failing does not stop the other."""
    deps = container()
    minute = scheduled_minute(event)
    result: dict[str, Any] = {}
    jobs = (("cron", lambda d: fire_due(d, minute)), ("sweep", sweeper.sweep))
    for name, job in jobs:
        try:
            result[name] = job(deps)
        except Exception:  # noqa: BLE001 - the next tick tries again
            logger.exception(f"{name} failed")
            result[name] = "error"
    return result
