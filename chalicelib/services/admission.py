"""Admission: hand a pending run to the executor, within its automation's concurrency limit.

Slots are held in DynamoDB (a conditional write per acquire), so the limit holds across
every Lambda at once; admission is FIFO by creation time.
"""
from __future__ import annotations

import uuid
from typing import Any

from ..domain.errors import RunNotFound
from ..domain.model import Run
from ..domain.statuses import RunStatus, is_terminal
from ..observability import logger


def limit_of(run: Run) -> int | None:
    """The concurrency limit in the run's stored definition, if any."""
    return run.automation.concurrency_limit


def step_message(run_id: str, token: str | None = None,
                 parent: str | None = None) -> dict[str, Any]:
    """A wake-up for the run: `{runId, token}` (+ `parent`). The executor reads the run and
    goes on from its first step not recorded, so the message names no step. `token` names
    this wake-up: a parked step records it, so a redelivered copy may pass its wait on and a
    duplicate is dropped; `parent` is the token of the wake-up this one replaces (see
    executor._woken_early). Fields other than these (e.g. the `stepIndex` older messages
    carried) are ignored."""
    message = {"runId": run_id, "token": token or str(uuid.uuid4())}
    if parent is not None:
        message["parent"] = parent
    return message


def enqueue(deps, run: Run, delay_seconds: int = 0, *, token: str | None = None,
            parent: str | None = None) -> None:
    """Send the wake-up that makes the executor go on with `run` (after `delay_seconds`)."""
    deps.step_queue.send(step_message(run.id, token, parent), delay_seconds=delay_seconds)


def admit(deps, run: Run) -> None:
    """Enqueue a new run, or, with a limit, admit the oldest waiting runs while slots last."""
    limit = limit_of(run)
    if limit is None:
        enqueue(deps, run)
        return
    admit_waiting(deps, run.automation_name, limit, newest=run, recover=False)


def admit_waiting(deps, automation: str, limit: int, newest: Run | None = None, *,
                  recover: bool = True) -> int:
    """Give free slots to waiting runs, oldest first; returns how many were (re)admitted."""
    # `recover` is the sweeper's pass: it re-sends the message of runs already holding a
    # slot (it may have been lost) and frees slots still held by ended runs. A trigger or a
    # release must not re-send, or every ending would duplicate the waiting runs' messages.
    waiting = deps.repo.runs_in_status(
        RunStatus.PENDING, automation_name=automation, limit=max(limit, 10)
    )
    if newest is not None and all(run.id != newest.id for run in waiting):
        waiting.append(newest)  # the index may not show a run created a moment ago
    held = deps.slots.holders(automation)
    if recover and waiting and len(held) >= limit and reclaim(deps, automation):
        held = deps.slots.holders(automation)
    admitted = 0
    for run in waiting:
        if run.id in held:
            if recover and not has_ended(deps, run.id):
                enqueue(deps, run)
                admitted += 1
            continue
        if not deps.slots.acquire(automation, run.id, limit):
            break
        if has_ended(deps, run.id):
            # Cancelled after the list was read: its own release may already have run.
            deps.slots.release(automation, run.id)
            continue
        enqueue(deps, run)
        admitted += 1
    if admitted:
        logger.info("runs admitted", extra={"automation": automation, "admitted": admitted})
    return admitted


def has_ended(deps, run_id: str) -> bool:
    """True when the run is terminal (or gone), read consistently."""
    try:
        return is_terminal(deps.repo.get_run(run_id).status)
    except RunNotFound:
        return True


def reclaim(deps, automation: str) -> int:
    """Free slots still held by ended runs (a crash between a run's end and its release)."""
    freed = 0
    for run_id in deps.slots.holders(automation):
        if has_ended(deps, run_id):
            deps.slots.release(automation, run_id)
            freed += 1
    if freed:
        logger.warning("slots reclaimed", extra={"automation": automation, "freed": freed})
    return freed


def release(deps, run: Run) -> None:
    """Free the run's slot (idempotent) and admit the next waiting run of its automation."""
    limit = limit_of(run)
    if limit is None:
        return
    deps.slots.release(run.automation_name, run.id)
    deps.faults.point("admission.after_release")
    admit_waiting(deps, run.automation_name, limit, recover=False)
