"""Restart recovery for a backend that one process owns (the single-machine stack).

When such a process starts, no executor of the previous one can still be running, so a step
it had claimed and not recorded was interrupted mid-attempt. On AWS the step's message comes
back after the crashed invocation's visibility timeout and claims the step once its lease has
passed; here the lease is released at once: the interrupted attempt is recorded and the run's
step message sent again, so the next delivery claims the step and runs a new attempt (the
retry policy then decides as for any attempt).
"""
from __future__ import annotations

from ..domain.errors import RunNotFound, StepConflict
from ..domain.clock import iso
from ..domain.statuses import RunStatus, StepStatus
from ..observability import logger
from . import admission

INTERRUPTED = "attempt interrupted: the stack stopped while it ran"
# Runs read per start; a single machine rarely has more running at once.
BATCH = 1000


def release_interrupted_steps(deps) -> list[tuple[str, str]]:
    """Release every step claimed mid-attempt by an executor that is gone; returns
    (run id, step name) of each."""
    released = []
    for run in deps.repo.runs_in_status(RunStatus.RUNNING, limit=BATCH):
        try:
            run, steps = deps.repo.get_detail(run.id)
        except RunNotFound:
            continue
        for step in steps:
            # Waiting steps (retry backoff, delay/wait) have a delayed message of their own.
            if step.status != StepStatus.RUNNING or step.next_attempt_at is not None:
                continue
            if step.claim_token is None:
                continue
            record = {"attempt": step.attempt, "startedAt": None, "completedAt": iso(deps.clock()),
                      "error": INTERRUPTED, "errorType": "Interrupted", "stack": None}
            try:
                deps.repo.write_step(run.id, step.evolve(attempts=step.attempts + (record,)),
                                     expect={StepStatus.RUNNING}, token=step.claim_token)
            except StepConflict:
                continue  # recorded meanwhile
            admission.enqueue(deps, run)
            logger.info("interrupted step released", extra={"run_id": run.id, "step": step.name})
            released.append((run.id, step.name))
    return released
