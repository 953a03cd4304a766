"""The sweeper: nothing stays `running` past its deadline, no waiting run is stranded.

It reads a bounded number of runs per tick (oldest first), so its cost per tick is constant.
"""
from __future__ import annotations

from datetime import timedelta

from ..domain.statuses import RunStatus, StepStatus
from . import admission
from .executor import time_out

BATCH = 100
LOST_MESSAGE_AFTER = timedelta(seconds=60)


def sweep(deps) -> dict[str, int]:
    """Time out runs whose executor vanished; admit or re-enqueue waiting runs."""
    now = deps.clock()
    timed_out = 0
    for run in deps.repo.runs_in_status(RunStatus.RUNNING, limit=BATCH):
        if run.deadline_at is None or run.deadline_at > now:
            continue
        run, steps = deps.repo.get_detail(run.id)
        if run.status != RunStatus.RUNNING:
            continue
        in_flight = next((s for s in steps if s.status == StepStatus.RUNNING), None)
        time_out(deps, run, in_flight, actor="sweeper")
        timed_out += 1
    admitted = 0
    for automation in deps.catalog.all():
        if automation.concurrency is not None:
            admitted += admission.admit_waiting(deps, automation.name,
                                                automation.concurrency.limit)
    requeued = 0
    for run in deps.repo.runs_in_status(RunStatus.PENDING, limit=BATCH):
        if admission.limit_of(run) is None and now - run.created_at > LOST_MESSAGE_AFTER:
            admission.enqueue(deps, run)  # the executor ignores it if the run already moved
            requeued += 1
    return {"timedOut": timed_out, "admitted": admitted, "requeued": requeued}
