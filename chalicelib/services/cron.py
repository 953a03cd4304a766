"""Cron triggers: each due automation fires exactly once per minute, however many tickers."""
from __future__ import annotations

from datetime import datetime

from ..domain.clock import iso
from ..domain.trigger_data import CronData
from .trigger import start_once, start_run


def fire_due(deps, now: datetime | None = None) -> list[str]:
    """Start a run for every enabled cron automation due this minute; returns the run ids."""
    minute = (now or deps.clock()).replace(second=0, microsecond=0)
    started = []
    for automation in deps.catalog.cron_automations():
        if not automation.trigger.is_due(minute):
            continue
        scheduled = iso(minute)
        run, created = start_once(
            deps, "cron", f"{automation.name}:{scheduled}",
            lambda run_id, a=automation: start_run(
                deps, a, "cron", CronData(scheduledAt=scheduled).to_json(), actor="scheduler",
                run_id=run_id),
        )
        if created:
            started.append(run.id)
    return started
