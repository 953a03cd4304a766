"""Run lifecycle: admission to `running`, the final transition, and what follows an ending
(exhausted-runs queue, failure handlers, freeing the concurrency slot). Every status change
is a conditional write through the repository."""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from ..domain.clock import iso
from ..domain.errors import AlreadyExists, InvalidTransition, RunNotFound
from ..domain.model import Event, Run, Step
from ..domain.statuses import RunStatus
from ..domain.trigger_data import FailedRun, FailureData
from ..observability import emit, logger
from . import admission

OUTCOME_METRICS = {
    RunStatus.COMPLETED: "RunsCompleted",
    RunStatus.COMPLETED_WITH_ERRORS: "RunsCompletedWithErrors",
    RunStatus.FAILED: "RunsFailed",
    RunStatus.TIMED_OUT: "RunsTimedOut",
    RunStatus.EXHAUSTED: "RunsExhausted",
    RunStatus.CANCELLED: "RunsCancelled",
}
FOLLOW_UP_TTL_S = 7 * 24 * 3600  # far longer than any message redelivery
FAILURE_NAMESPACE = uuid.UUID("6f1c1a52-3f55-4a8e-9a43-6f0e0f4a1d10")


def begin(deps, run: Run, actor: str = "executor") -> Run | None:
    """pending → running: admission time starts the run timeout. None if another write won."""
    now = deps.clock()
    timeout_ms = int((run.definition or {}).get("timeout", 900_000))
    started = run.evolve(status=RunStatus.RUNNING, started_at=now,
                         deadline_at=now + timedelta(milliseconds=timeout_ms))
    event = Event(at=now, type="transition", from_status="pending", to_status="running",
                  actor=actor)
    try:
        started = deps.repo.update_run(started, expected_status=RunStatus.PENDING, event=event)
    except InvalidTransition as exc:
        logger.info("run not started", extra={"run_id": run.id, "status": exc.current})
        return None
    emit("RunsStarted", 1, run.automation_name)
    emit("QueueWaitMs", started.queued_ms or 0, run.automation_name, unit="ms")
    return started


def finish(deps, run: Run, status: RunStatus, *, error: dict[str, Any] | None = None,
           attempt: int | None = None, actor: str = "executor",
           detail: dict[str, Any] | None = None) -> Run | None:
    """running → a terminal status, then its follow-ups. None if another write (a cancel) won."""
    now = deps.clock()
    ended = run.evolve(status=status, completed_at=now, error=error,
                       attempt=max(run.attempt, attempt or 0))
    event = Event(at=now, type="transition", from_status=run.status.value,
                  to_status=status.value, actor=actor, detail=detail or {})
    try:
        ended = deps.repo.update_run(ended, expected_status=run.status, event=event)
    except InvalidTransition as exc:
        logger.info("run already ended", extra={"run_id": run.id, "status": exc.current})
        return None
    logger.info("run ended", extra={"run_id": run.id, "automation": run.automation_name,
                                    "status": status.value})
    emit(OUTCOME_METRICS[status], 1, run.automation_name)
    if ended.duration_ms is not None:
        emit("RunDurationMs", ended.duration_ms, run.automation_name, unit="ms")
    after_end(deps, ended)
    return ended


def cancelled(deps, run: Run) -> None:
    """Follow-ups of a cancel: the metric and the freed slot (no failure handlers)."""
    emit(OUTCOME_METRICS[RunStatus.CANCELLED], 1, run.automation_name)
    after_end(deps, run)


def _follow_up_key(run: Run) -> str:
    return f"ended:{run.id}"


def followed_up(deps, run: Run) -> bool:
    """True once every follow-up of the run's ending has been done."""
    return deps.markers.get(_follow_up_key(run)) is not None


def after_end(deps, run: Run) -> None:
    """Follow-ups of an ended run. Safe to repeat: a message that finds the run ended without
    the closing marker (a crash right after the ending) calls it again."""
    admission.release(deps, run)
    if run.status == RunStatus.EXHAUSTED:
        deps.exhausted_queue.send({
            "runId": run.id, "automationName": run.automation_name,
            "error": run.error, "attempts": run.attempt,
        })
    if run.status not in (RunStatus.CANCELLED, RunStatus.COMPLETED) and \
            run.trigger_type != "automation-failure":
        # Handlers start from their own message, so the failing run is not delayed by them.
        deps.step_queue.send({"kind": "failure", "runId": run.id})
    deps.markers.put_once(_follow_up_key(run), {"status": run.status.value}, FOLLOW_UP_TTL_S)


def failure_payload(run: Run, steps: list[Step]) -> dict[str, Any]:
    """The automation-failure trigger data of SPEC 2.1."""
    # The step that ended the run, not one that failed earlier under continueOnError.
    ending = (run.error or {}).get("step")
    failed = next((s for s in steps if s.name == ending and s.status.value == "failed"),
                  next((s for s in steps if s.status.value == "failed"), None))
    max_attempts = 1
    if failed is not None:
        action = run.definition["actions"][failed.index]
        policy = action.get("retry") or run.definition.get("retry") or {}
        max_attempts = int(policy.get("maxAttempts", 1))
    return FailureData(run=FailedRun(
        id=run.id, automationName=run.automation_name, status=run.status,
        error=run.error, attempt=run.attempt, maxAttempts=max_attempts,
        triggerType=run.trigger_type, startedAt=iso(run.started_at),
        completedAt=iso(run.completed_at), failedStep=failed.name if failed else None,
    )).to_json()


def dispatch_failure_handlers(deps, run_id: str) -> list[str]:
    """Start one run per enabled handler watching the run's outcome (once, however often)."""
    from .trigger import start_run  # noqa: PLC0415 - trigger imports admission too

    try:
        run, steps = deps.repo.get_detail(run_id)
    except RunNotFound:
        return []
    if run.trigger_type == "automation-failure":
        return []  # loop guard: a handler's own failure never dispatches handlers
    started = []
    for handler in deps.catalog.failure_handlers(run.automation_name, run.status):
        handler_run_id = str(uuid.uuid5(FAILURE_NAMESPACE, f"{run.id}:{handler.name}"))
        try:
            start_run(deps, handler, "automation-failure", failure_payload(run, steps),
                      actor=f"failure-of:{run.id}", run_id=handler_run_id)
        except AlreadyExists:
            continue
        started.append(handler_run_id)
    return started
