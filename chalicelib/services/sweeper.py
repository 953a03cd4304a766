"""The sweeper: nothing stays `running` past its deadline, no waiting run is stranded, and
runs past their retention are deleted (so list totals stop counting them).

It reads a bounded number of runs per tick (oldest first), so its cost per tick is constant.
"""
from __future__ import annotations

from datetime import timedelta

from ..domain.statuses import RunStatus, StepStatus
from ..observability import logger
from . import admission, lifecycle

BATCH = 100
LOST_MESSAGE_AFTER = timedelta(seconds=60)


def sweep(deps) -> dict[str, int]:
    """Time out vanished runs, admit or re-enqueue waiting ones, delete expired ones."""
    now = deps.clock()
    timed_out = 0
    for run in deps.repo.runs_in_status(RunStatus.RUNNING, limit=BATCH):
        if run.deadline_at is not None and run.deadline_at <= now:
            timed_out += _guarded(_time_out_vanished, deps, run)
    pending = deps.repo.runs_in_status(RunStatus.PENDING, limit=BATCH)
    # Limits of today's catalog, and those stored with waiting runs whose automation has
    # since lost its limit (or been removed), so no waiting run is stranded either way.
    limits = {a.name: a.concurrency.limit for a in deps.catalog.all() if a.concurrency}
    for run in pending:
        stored = admission.limit_of(run)
        if stored is not None:
            limits.setdefault(run.automation_name, stored)
    admitted = sum(_guarded(admission.admit_waiting, deps, name, limit)
                   for name, limit in limits.items())
    requeued = 0
    for run in pending:
        if run.automation_name not in limits and now - run.created_at > LOST_MESSAGE_AFTER:
            admission.enqueue(deps, run)  # the executor ignores it if the run already moved
            requeued += 1
    purged = _guarded(_purge_expired, deps, now)
    return {"timedOut": timed_out, "admitted": admitted, "requeued": requeued,
            "purged": purged}


def _purge_expired(deps, now) -> int:
    """Delete a batch of runs past their retention; returns how many were deleted."""
    # DynamoDB's TTL alone takes up to ~48 h, and the list totals (stream-fed counters)
    # count a run until its item is deleted.
    return sum(_guarded(_purge_one, deps, run_id)
               for run_id in deps.repo.expired_runs(now, BATCH))


def _purge_one(deps, run_id: str) -> int:
    deps.repo.delete_run(run_id)
    return 1


def _time_out_vanished(deps, run) -> int:
    """Time out one running run past its deadline; 1 when it was this sweep that did."""
    run, steps = deps.repo.get_detail(run.id)
    if run.status != RunStatus.RUNNING:
        return 0
    in_flight = next((s for s in steps if s.status == StepStatus.RUNNING), None)
    lifecycle.time_out(deps, run, in_flight, actor="sweeper")
    return 1


def _guarded(job, *args) -> int:
    """One run's or automation's sweep; a failure is logged and the sweep goes on."""
    try:
        return job(*args)
    except Exception:  # noqa: BLE001 - the next tick retries it
        logger.exception("sweep item failed", extra={"item": str(args[1:])[:200]})
        return 0
