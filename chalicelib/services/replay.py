"""Replay with idempotent resume (SPEC 5): a new run that reuses what the original completed.

The original is never changed, except that its audit trail records the replay.
"""
from __future__ import annotations

import uuid
from typing import Any

from ..domain.definitions import Automation, stored_automation
from ..domain.errors import Conflict, Forbidden, InvalidTransition, ValidationFailed
from ..domain.model import Event, Run, Step
from ..domain.statuses import RunStatus, StepStatus
from ..observability import logger
from .trigger import start_once, start_run
from .lifecycle import write_run

_UNSET: Any = object()


def _completed_outputs(steps: list[Step]) -> dict[str, Step]:
    """Steps that completed in the original (a filter that halted counts as not completed,
    so a replay re-evaluates it and never walks past it)."""
    done = {}
    for step in steps:
        reused = step.status == StepStatus.SKIPPED and step.reused_from
        completed = step.status == StepStatus.COMPLETED and not _halted(step)
        if completed or reused:
            done[step.name] = step
    return done


def _halted(step: Step) -> bool:
    return step.type == "filter" and isinstance(step.output, dict) and \
        step.output.get("passed") is False


def plan(automation: Automation, original: Run, steps: list[Step],
         from_step: str | None) -> tuple[int, list[Step]]:
    """The resume index and the steps to record as reused (`skipped` with their outputs)."""
    names = [action.name for action in automation.actions]
    done = _completed_outputs(steps)
    resume = next((i for i, name in enumerate(names) if name not in done), None)
    if from_step is not None:
        if from_step not in names:
            raise ValidationFailed(f"fromStep: unknown step {from_step!r}", [
                {"field": "fromStep", "message": f"unknown step; one of {names}"}])
        start = names.index(from_step)
        if resume is not None and start > resume:
            raise ValidationFailed("fromStep is after the resume point", [
                {"field": "fromStep",
                 "message": f"must be at or before {names[resume]!r}, the first step "
                            "that did not complete"}])
        resume = start
    if resume is None:
        raise Conflict("nothing to resume: every step completed; give fromStep to repeat",
                       status=original.status.value)
    reused = [
        Step(index=i, name=name, type=done[name].type, operator=done[name].operator,
             status=StepStatus.SKIPPED, output=done[name].output,
             started_at=done[name].started_at, completed_at=done[name].completed_at,
             attempt=done[name].attempt, reused_from=done[name].reused_from or original.id)
        for i, name in enumerate(names)
        if name in done and (from_step is None or i < resume)
    ]
    return resume, reused


def replay(deps, run_id: str, *, actor: str, is_admin: bool, from_step: str | None = None,
           trigger_data: Any = _UNSET, definition: str = "latest",
           idempotency_key: str | None = None,
           batch_id: str | None = None) -> tuple[Run, list[Step]]:
    """Create the replay run (once per Idempotency-Key); returns it with its reused steps.
    `batch_id`: the bulk replay creating it, named in the original's audit trail."""
    if trigger_data is not _UNSET and not is_admin:
        raise Forbidden("replacing triggerData needs the admin role")
    original, steps = deps.repo.get_detail(run_id)
    if original.status in (RunStatus.PENDING, RunStatus.RUNNING):
        raise Conflict(f"run {run_id} is still {original.status.value}",
                       status=original.status.value)
    if original.status == RunStatus.COMPLETED and from_step is None:
        raise Conflict(f"run {run_id} completed: nothing to resume; give fromStep to repeat "
                       "steps", status=original.status.value)
    if definition == "original":
        automation_def = original.definition
    else:
        automation_def = deps.catalog.get(original.automation_name).to_dict()
    resume, reused = plan(stored_automation(automation_def), original, steps, from_step)
    automation = deps.catalog.get(original.automation_name)
    data = original.trigger_data if trigger_data is _UNSET else trigger_data

    def create(new_id: str) -> Run:
        run = start_run(deps, automation, original.trigger_type, data, actor=actor,
                        run_id=new_id, replay_of=original.id, resume_from=resume,
                        reused_steps=[s.name for s in reused], steps=reused,
                        definition=automation_def, depth=original.depth)
        _record_on_original(deps, original, run, actor, batch_id)
        return run

    if idempotency_key:
        run, created = start_once(deps, "replay", f"{run_id}:{idempotency_key}", create)
        if not created and batch_id and not _names(original, run.id):
            # The first attempt died between creating the replay and recording it.
            _record_on_original(deps, original, run, actor, batch_id)
    else:
        run = create(str(uuid.uuid4()))
    return run, reused


def _names(original: Run, replay_id: str) -> bool:
    """True when the original's audit trail already records the replay `replay_id`."""
    return any(event.type == "replayed" and event.detail.get("replayId") == replay_id
               for event in original.events)


def _record_on_original(deps, original: Run, replay_run: Run, actor: str,
                        batch_id: str | None = None) -> None:
    """Append a `replayed` event to the original's audit trail (status unchanged)."""
    detail = {"replayId": replay_run.id, **({"batchId": batch_id} if batch_id else {})}
    event = Event(at=replay_run.created_at, type="replayed", actor=actor, detail=detail)
    current = deps.repo.get_run(original.id)
    try:
        write_run(deps.repo, current, lambda stored: stored, expected_status=current.status,
                  event=event)
    except InvalidTransition:
        logger.warning("replay event not recorded", extra={"run_id": original.id})
