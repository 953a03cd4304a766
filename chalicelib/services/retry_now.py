"""Retry now (issue 17): wake a step parked on its retry backoff (or a `delay/wait`) at once.

The parked step names the wake-up chain allowed to resume it (its claim token, see
executor._woken_early). Waking writes the step due now under a new token, conditional on the
old one, and revokes the old one on the step: the original delayed message, when it arrives,
finds its chain revoked and does nothing, and the new message is the only one that may claim
the step. Claims stay conditional, so the two could never both run the attempt anyway.

A repeated request finds the step already woken and answers the same, sending the wake-up
again while no attempt has claimed the step (a crash between the write and the send leaves
it to the repeat); the audit event is written once per woken attempt.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.clock import iso
from ..domain.errors import InvalidTransition, StepConflict, StepNotFound, StepNotWaiting
from ..domain.model import Event, Run, Step
from ..domain.statuses import RunStatus, StepStatus
from ..observability import logger
from . import admission, lifecycle
from .tokens import Role, require_role

MAX_TRIES = 3  # the chain moves on at most once per 15 minutes: a retry or two is plenty
EVENT = "retry-now"


@dataclass(frozen=True)
class Woken:
    """The answer of a retry-now: which step, which attempt runs now, whether repeated."""

    run_id: str
    step: str
    kind: str  # "retry" | "delay"
    attempt: int
    woken_at: datetime
    repeated: bool

    def to_json(self) -> dict[str, Any]:
        return {"runId": self.run_id, "step": self.step, "kind": self.kind,
                "attempt": self.attempt, "wokenAt": iso(self.woken_at),
                "repeated": self.repeated}


def retry_now(deps, run_id: str, step_name: str, *, actor: str, role: Role) -> Woken:
    """Wake the step `step_name` of the run; StepNotWaiting (409) when it waits for nothing."""
    for _ in range(MAX_TRIES):
        run, steps = deps.repo.get_detail(run_id)
        step = _step(run, steps, step_name)
        kind = "delay" if step.type == "delay" else "retry"
        if kind == "delay":
            require_role(role, Role.ADMIN)  # a delay is part of the automation's design
        attempt = step.attempt if kind == "delay" else step.attempt + 1
        if run.status == RunStatus.RUNNING and step.status == StepStatus.RUNNING \
                and step.woken_at is not None:
            return _repeated(deps, run, step, kind, actor)
        if run.status != RunStatus.RUNNING or step.status != StepStatus.RUNNING \
                or step.next_attempt_at is None:
            raise StepNotWaiting(run.id, step.name, step.status.value, run.status.value)
        now = deps.clock()
        token = str(uuid.uuid4())
        woken = step.evolve(claim_token=token, next_attempt_at=now, woken_at=now,
                            revoked=step.revoked + ((step.claim_token,) if step.claim_token
                                                    else ()))
        try:
            deps.repo.write_step(run.id, woken, expect={StepStatus.RUNNING},
                                 token=step.claim_token)
        except StepConflict:
            continue  # the chain moved on, or the step resumed meanwhile: look again
        deps.faults.point("retry_now.after_wake")
        admission.enqueue(deps, run, token=token)
        _record(deps, run, woken, kind, attempt, actor, step.next_attempt_at)
        logger.info("step woken", extra={"action": "step_retry_now", "run_id": run.id,
                                         "step": step.name, "attempt": attempt, "actor": actor})
        return Woken(run.id, step.name, kind, attempt, now, repeated=False)
    raise StepConflict(run_id, -1, "running")


def _step(run: Run, steps: list[Step], name: str) -> Step:
    """The recorded step called `name`; a step of the definition not reached yet is pending."""
    actions = run.definition.get("actions", [])
    index = next((i for i, action in enumerate(actions) if action.get("name") == name), None)
    if index is None:
        raise StepNotFound(run.id, name)
    recorded = next((step for step in steps if step.index == index), None)
    if recorded is None:
        status = StepStatus.PENDING if run.status in (RunStatus.PENDING, RunStatus.RUNNING) \
            else StepStatus.SKIPPED
        raise StepNotWaiting(run.id, name, status.value, run.status.value)
    return recorded


def _repeated(deps, run: Run, step: Step, kind: str, actor: str) -> Woken:
    """The step was woken already: send the wake-up again while no attempt has claimed it."""
    unclaimed = step.next_attempt_at is not None
    attempt = (step.attempt if kind == "delay" else step.attempt + 1) if unclaimed \
        else (step.attempt if kind == "retry" else max(1, step.attempt - 1))
    if unclaimed:
        admission.enqueue(deps, run, token=step.claim_token)
        _record(deps, run, step, kind, attempt, actor, None)
    return Woken(run.id, step.name, kind, attempt, step.woken_at, repeated=True)


def _record(deps, run: Run, step: Step, kind: str, attempt: int, actor: str,
            was_until: datetime | None) -> None:
    """The audit event (once per woken attempt) and the run no longer shown as waiting."""
    if any(event.type == EVENT and event.detail.get("step") == step.name
           and event.detail.get("attempt") == attempt for event in run.events):
        return
    event = Event(at=step.woken_at or deps.clock(), type=EVENT, actor=actor,
                  detail={"step": step.name, "kind": kind, "attempt": attempt,
                          "waitingUntil": iso(was_until)})

    def woken(stored: Run) -> Run:
        # Only the wait this request ended: the woken attempt may have parked again.
        waiting = stored.waiting
        if waiting is not None and waiting.step_index == step.index \
                and waiting.attempt == attempt:
            waiting = None
        return stored.evolve(waiting=waiting)

    try:
        lifecycle.write_run(deps.repo, deps.repo.get_run(run.id), woken,
                            expected_status=RunStatus.RUNNING, event=event)
    except InvalidTransition:
        pass  # the run ended meanwhile (the woken attempt was its last); the step says it
