"""The minute tick: fire due cron automations, then sweep (deadlines, waiting runs)."""
from __future__ import annotations

from typing import Any

from ..bootstrap import container
from ..observability import logger
from ..services import sweeper
from ..services.cron import fire_due


def handle_tick(event=None) -> dict[str, Any]:
    """Run both halves; one failing does not stop the other."""
    deps = container()
    result: dict[str, Any] = {}
    for name, job in (("cron", fire_due), ("sweep", sweeper.sweep)):
        try:
            result[name] = job(deps)
        except Exception:  # noqa: BLE001 - the next tick tries again
            logger.exception(f"{name} failed")
            result[name] = "error"
    return result
