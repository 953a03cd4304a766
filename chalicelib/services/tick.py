"""The minute tick: fire due cron automations, then sweep (deadlines, waiting runs)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..observability import logger
from . import sweeper
from .cron import fire_due


def tick(deps, minute: datetime | None) -> dict[str, Any]:
    """Run both halves for the scheduled `minute`; one failing does not stop the other."""
    result: dict[str, Any] = {}
    jobs = (("cron", lambda d: fire_due(d, minute)), ("sweep", sweeper.sweep))
    for name, job in jobs:
        try:
            result[name] = job(deps)
        except Exception:  # noqa: BLE001 - the next tick tries again
            logger.exception(f"{name} failed")
            result[name] = "error"
    return result
