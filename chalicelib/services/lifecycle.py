"""Run lifecycle: admission to `running`, the final transition (a timeout, a cancel, a
dead-lettered message), and what follows an ending
(exhausted-runs queue, failure handlers, freeing the concurrency slot). Every status change
is a conditional write through the repository."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..actions.base import MAX_CALL_DEPTH
from ..domain.clock import iso
from ..domain.errors import AlreadyExists, InvalidTransition, RunNotFound, StaleRun, StepConflict
from ..domain.model import Event, Run, Step
from ..domain.retry import effective_policy
from ..domain.statuses import RunStatus, StepStatus, is_terminal
from ..domain.trigger_data import FailedRun, FailureData
from ..observability import emit, logger
from . import admission
from .runs import cancel_run

OUTCOME_METRICS = {
    RunStatus.COMPLETED: "RunsCompleted",
    RunStatus.COMPLETED_WITH_ERRORS: "RunsCompletedWithErrors",
    RunStatus.FAILED: "RunsFailed",
    RunStatus.TIMED_OUT: "RunsTimedOut",
    RunStatus.EXHAUSTED: "RunsExhausted",
    RunStatus.CANCELLED: "RunsCancelled",
}
FOLLOW_UP_TTL_S = 7 * 24 * 3600  # far longer than any message redelivery
HANDLERS_STOPPED = "failure-handlers-stopped"
MAX_DELAY_S = 900  # SQS's longest message delay
INTERRUPTED = {"type": "Interrupted",
               "message": "the run ended while this attempt ran, and its executor never "
                          "reported a result before its lease expired"}
MAX_REWRITES = 10  # same-status writers racing on one run item (attempt, deadline, events)
FAILURE_NAMESPACE = uuid.UUID("6f1c1a52-3f55-4a8e-9a43-6f0e0f4a1d10")


def write_run(repo, run: Run, change: Callable[[Run], Run], *, expected_status: RunStatus,
              event: Event | None = None) -> Run:
    """Write `change(run)` (same status: a status change is `transition_run`) conditional on
    the stored status and version. When a same-status writer got there first (StaleRun),
    apply the change again to the run it stored, so no writer overwrites another's fields.
    InvalidTransition when the status moved on."""
    def same_status(current: Run) -> tuple[Run, Event | None]:
        changed = change(current)
        if changed.status != expected_status:
            raise ValueError("a status change goes through Run.transition (transition_run)")
        return changed, event

    return _persist(repo, run, same_status, expected_status)


def transition_run(repo, run: Run, to: RunStatus, *, at: datetime, actor: str,
                   event_type: str = "transition", detail: dict[str, Any] | None = None,
                   fields: Callable[[Run], dict[str, Any]] = lambda current: {}) -> Run:
    """Move `run` to `to` as the domain decides (`Run.transition`: the table and the audit
    event) and persist it conditional on the stored status still being `run.status`. After a
    same-status write (StaleRun) the transition is decided again on the stored run, with
    `fields(stored)`. InvalidTransition when the table forbids it or the status moved on."""
    def decide(current: Run) -> tuple[Run, Event | None]:
        return current.transition(to, at=at, actor=actor, event_type=event_type,
                                  detail=detail, **fields(current))

    return _persist(repo, run, decide, run.status)


def _persist(repo, run: Run, decide: Callable[[Run], tuple[Run, Event | None]],
             expected_status: RunStatus) -> Run:
    for _ in range(MAX_REWRITES - 1):
        changed, event = decide(run)
        try:
            return repo.update_run(changed, expected_status=expected_status, event=event)
        except StaleRun as exc:
            run = exc.stored
    changed, event = decide(run)
    return repo.update_run(changed, expected_status=expected_status, event=event)


def begin(deps, run: Run, actor: str = "executor") -> Run | None:
    """pending → running: admission time starts the run timeout. None if another write won."""
    now = deps.clock()
    timeout_ms = run.automation.timeout
    try:
        started = transition_run(deps.repo, run, RunStatus.RUNNING, at=now, actor=actor,
                                 fields=lambda current: {
                                     "deadline_at": now + timedelta(milliseconds=timeout_ms)})
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
    deps.faults.point("lifecycle.before_final_write")
    try:
        ended = transition_run(deps.repo, run, status, at=now, actor=actor, detail=detail,
                               fields=lambda current: {
                                   "error": error,
                                   "attempt": max(current.attempt, attempt or 0)})
    except InvalidTransition as exc:
        logger.info("run already ended", extra={"run_id": run.id, "status": exc.current})
        return None
    deps.faults.point("lifecycle.after_final_write")
    logger.info("run ended", extra={"run_id": run.id, "automation": run.automation_name,
                                    "status": status.value})
    emit(OUTCOME_METRICS[status], 1, run.automation_name)
    if ended.duration_ms is not None:
        emit("RunDurationMs", ended.duration_ms, run.automation_name, unit="ms")
    after_end(deps, ended, fresh=True)
    return ended


def time_out(deps, run: Run, in_flight: Step | None, actor: str = "executor") -> None:
    """The run passed its deadline: fail the in-flight step, end the run `timed-out`."""
    timeout_ms = run.automation.timeout
    error = {"message": f"run timeout of {timeout_ms} ms exceeded", "type": "Timeout"}
    if in_flight is not None and in_flight.status == StepStatus.RUNNING:
        failed = in_flight.evolve(status=StepStatus.FAILED, completed_at=deps.clock(),
                                  error=error, next_attempt_at=None)
        try:
            deps.repo.write_step(run.id, failed, expect={StepStatus.RUNNING})
        except StepConflict:
            pass  # it finished just now; its real result stands
    finish(deps, run, RunStatus.TIMED_OUT, actor=actor,
           error={**error, "step": in_flight.name if in_flight else None})


def cancel(deps, run_id: str, *, actor: str) -> Run:
    """Cancel a pending or running run and do what follows (InvalidTransition once it is
    terminal): the cancel route's one call."""
    run = cancel_run(deps.repo, run_id, actor=actor, now=deps.clock())
    cancelled(deps, run)
    return run


def fail_crashed_run(deps, run_id: str) -> None:
    """A step message crashed the executor repeatedly (dead-lettered): mark the run `failed`
    ("executor crashed repeatedly"), its in-flight step too. An ended run gets its
    follow-ups and its steps settled instead."""
    try:
        run, steps = deps.repo.get_detail(run_id)
    except RunNotFound:
        return
    if is_terminal(run.status):
        if not followed_up(deps, run):
            after_end(deps, run)  # it crashed right after the run ended
        settle_steps(deps, run, steps)
        return
    if run.status == RunStatus.PENDING:
        run = begin(deps, run, actor="dlq")
    if run is None or run.status != RunStatus.RUNNING:
        return
    error = {"message": "executor crashed repeatedly on this run", "type": "ExecutorCrashed"}
    # The step in flight: one invocation may have run on past the step it was woken for.
    step = next((s for s in steps if s.status == StepStatus.RUNNING), None)
    if step is not None:
        try:
            deps.repo.write_step(run.id, step.evolve(status=StepStatus.FAILED, error=error,
                                                     completed_at=deps.clock(),
                                                     next_attempt_at=None),
                                 expect={StepStatus.RUNNING})
        except StepConflict:
            pass
    error["step"] = step.name if step else None
    finish(deps, run, RunStatus.FAILED, error=error, actor="dlq")
    logger.warning("run failed by dead letter", extra={"run_id": run.id})


def cancelled(deps, run: Run) -> None:
    """Follow-ups of a cancel: the metric, the freed slot (no failure handlers), and its
    steps: one parked in a retry wait or delay/wait ends now; one in flight records its real
    result, or ends once its lease has expired (a message comes back to look)."""
    emit(OUTCOME_METRICS[RunStatus.CANCELLED], 1, run.automation_name)
    after_end(deps, run, fresh=True)
    _, steps = deps.repo.get_detail(run.id)
    live_until = settle_steps(deps, run, steps)
    if live_until is not None:
        seconds = (live_until - deps.clock()).total_seconds() + 1
        admission.enqueue(deps, run, delay_seconds=min(MAX_DELAY_S, max(0, int(seconds))))


def settle_steps(deps, run: Run, steps: list[Step]) -> datetime | None:
    """End every step an ended run left `running`: a parked one (retry wait, delay/wait) as
    `skipped` (`failed` with its last error after a failed attempt), one claimed by an
    executor that never reported back as `failed` (Interrupted) once its lease has expired.
    Returns the latest live lease, when an attempt may still record its real result."""
    now = deps.clock()
    live_until: datetime | None = None
    for step in steps:
        if step.status != StepStatus.RUNNING:
            continue
        if step.next_attempt_at is not None:
            status, error = (StepStatus.FAILED if step.error else StepStatus.SKIPPED), step.error
        elif step.lease_until is not None and step.lease_until > now:
            live_until = max(live_until or step.lease_until, step.lease_until)
            continue
        else:
            status, error = StepStatus.FAILED, dict(INTERRUPTED)
        try:
            deps.repo.write_step(run.id, step.evolve(
                status=status, error=error, completed_at=now, next_attempt_at=None,
            ), expect={StepStatus.RUNNING}, token=step.claim_token)
        except StepConflict:
            pass  # its real result (or a concurrent settle) got there first
    return live_until


def _follow_up_key(run: Run) -> str:
    return f"ended:{run.id}"


def has_follow_ups(run: Run) -> bool:
    """The run's ending frees a concurrency slot or sends a message. Only then is the closing
    marker written and read back: for any other run `after_end` does nothing, so repeating
    it needs no marker (a write unit per run saved, make bench)."""
    return (admission.limit_of(run) is not None or run.status == RunStatus.EXHAUSTED
            or needs_handlers(run))


def followed_up(deps, run: Run) -> bool:
    """True once every follow-up of the run's ending has been done."""
    if not has_follow_ups(run):
        return True
    return deps.markers.get(_follow_up_key(run)) is not None


def needs_handlers(run: Run) -> bool:
    """The run's ending dispatches failure handlers (a handler's own failure never does)."""
    return run.status not in (RunStatus.CANCELLED, RunStatus.COMPLETED) and \
        run.trigger_type != "automation-failure"


def after_end(deps, run: Run, *, fresh: bool = False) -> None:
    """Follow-ups of an ended run. Safe to repeat: a message that finds the run ended without
    the closing marker (a crash right after the ending) calls it again, and each follow-up
    happens once however often this runs. `fresh`: the caller's write just ended the run, so
    no follow-up can have been sent yet (their markers need no read)."""
    admission.release(deps, run)
    deps.faults.point("lifecycle.after_release")
    if run.status == RunStatus.EXHAUSTED:
        _once(deps, fresh, f"exhausted:{run.id}", lambda key: deps.exhausted_queue.send({
            "runId": run.id, "automationName": run.automation_name,
            "error": run.error, "attempts": run.attempt,
        }, dedup_id=key))
    if needs_handlers(run):
        # Handlers start from their own message, so the failing run is not delayed by them;
        # the handler runs' ids derive from the run's, so a repeated message starts none twice.
        _once(deps, fresh, f"failure:{run.id}", lambda key: deps.step_queue.send(
            {"kind": "failure", "runId": run.id}))
    if has_follow_ups(run):
        deps.markers.put_once(_follow_up_key(run), {"status": run.status.value},
                              FOLLOW_UP_TTL_S)


def _once(deps, fresh: bool, key: str, send: Callable[[str], Any]) -> None:
    """Send one follow-up once: skipped when its marker says it was sent; else sent with `key`
    as its deduplication id (a repeat after a crash or a lost answer is not delivered twice)
    and marked. The marker bounds repeats to SQS's deduplication window: a redelivery comes
    back within seconds (the step worker's short backoff), well inside it."""
    marker = f"sent:{key}"
    if not fresh and deps.markers.get(marker) is not None:
        return
    deps.faults.point(f"lifecycle.before_send:{key.split(':', 1)[0]}")
    send(key)
    deps.faults.point(f"lifecycle.after_send:{key.split(':', 1)[0]}")
    deps.markers.put_once(marker, {"sent": True}, FOLLOW_UP_TTL_S)


def failure_payload(run: Run, steps: list[Step]) -> dict[str, Any]:
    """The automation-failure trigger data of SPEC 2.1."""
    # The step that ended the run, not one that failed earlier under continueOnError.
    ending = (run.error or {}).get("step")
    failed = next((s for s in steps if s.name == ending and s.status.value == "failed"),
                  next((s for s in steps if s.status.value == "failed"), None))
    max_attempts = 1
    if failed is not None:
        automation = run.automation
        max_attempts = effective_policy(automation.actions[failed.index], automation).max_attempts
    return FailureData(run=FailedRun(
        id=run.id, automationName=run.automation_name, status=run.status,
        error=run.error, attempt=run.attempt, maxAttempts=max_attempts,
        triggerType=run.trigger_type, startedAt=iso(run.started_at),
        completedAt=iso(run.completed_at), failedStep=failed.name if failed else None,
    )).to_json()


def dispatch_failure_handlers(deps, run_id: str) -> list[str]:
    """Start one run per enabled handler watching the run's outcome (once, however often).

    A handler run is one call level deeper than the run it watches, so a handler that calls
    (automation/call) the automation it watches climbs the call depth each round and stops
    at MAX_CALL_DEPTH, recorded on the run whose handlers were not started.
    """
    from .trigger import start_run  # noqa: PLC0415 - trigger imports admission too

    try:
        run, steps = deps.repo.get_detail(run_id)
    except RunNotFound:
        return []
    if run.trigger_type == "automation-failure":
        return []  # loop guard: a handler's own failure never dispatches handlers
    handlers = deps.catalog.failure_handlers(run.automation_name, run.status)
    if handlers and run.depth + 1 > MAX_CALL_DEPTH:
        _record_handlers_stopped(deps, run, [handler.name for handler in handlers])
        return []
    started = []
    for handler in handlers:
        handler_run_id = str(uuid.uuid5(FAILURE_NAMESPACE, f"{run.id}:{handler.name}"))
        try:
            start_run(deps, handler, "automation-failure", failure_payload(run, steps),
                      actor=f"failure-of:{run.id}", run_id=handler_run_id, depth=run.depth + 1)
        except AlreadyExists:
            continue
        started.append(handler_run_id)
    return started


def _record_handlers_stopped(deps, run: Run, names: list[str]) -> None:
    """Say on the run's audit trail why its failure handlers did not start (once)."""
    if any(event.type == HANDLERS_STOPPED for event in run.events):
        return
    message = (f"failure handlers not started: this run is {run.depth} calls deep and a "
               f"handler run would pass the limit of {MAX_CALL_DEPTH} (a handler calling the "
               "automation it watches loops)")
    event = Event(at=deps.clock(), type=HANDLERS_STOPPED, actor="executor",
                  detail={"error": {"type": "CallDepthExceeded", "message": message},
                          "handlers": names, "depth": run.depth})
    logger.warning("failure handlers stopped", extra={"run_id": run.id, "depth": run.depth})
    try:
        write_run(deps.repo, run, lambda current: current, expected_status=run.status,
                  event=event)
    except InvalidTransition:
        pass  # the run is gone or changed status: nothing to annotate
