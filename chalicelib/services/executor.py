"""The step executor: claim → execute → record, each conditional, for one step message.

A recorded step is never executed again: a redelivered message finds it recorded and moves
on. Consecutive steps run in one invocation while its remaining time allows; waits (retry
backoff, delay/wait) and low remaining time hand over through a (delayed) SQS message.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..domain.errors import InvalidTransition, RunNotFound, StepConflict
from ..domain.model import Run, Step, Waiting
from ..domain.retry import ActionError, decide, effective_policy
from ..domain.statuses import STEP_TERMINAL, TERMINAL, RunStatus, StepStatus
from ..observability import emit, logger
from . import admission, bulk, lifecycle
from .attempt import Outcome, attempt_timeout_s, run_attempt
from .delivery import NO_DELIVERY

HANDOVER_MARGIN_MS = 5_000
LEASE_MARGIN = timedelta(seconds=60)
# Socket and thread timers may fire a hair before the wall clock reaches the deadline.
DEADLINE_SLACK = timedelta(milliseconds=50)
MAX_SQS_DELAY_S = 900
RUNNING = frozenset({StepStatus.RUNNING})


@dataclass(frozen=True)
class Carrier:
    """What the message being processed brings along: its wake-up token (and the token it
    was sent to replace) and its delivery (visibility) on the queue."""

    token: str | None = None
    parent: str | None = None
    delivery: Any = NO_DELIVERY

    @classmethod
    def of(cls, message: dict[str, Any], delivery: Any = NO_DELIVERY) -> "Carrier":
        return cls(message.get("token") or str(uuid.uuid4()), message.get("parent"), delivery)


def process_step_message(deps, message: dict[str, Any], remaining_ms: Callable[[], int],
                         delivery: Any = NO_DELIVERY) -> None:
    """Advance the run named by a step message as far as this invocation may."""
    if message.get("kind") == "failure":
        lifecycle.dispatch_failure_handlers(deps, message["runId"])
        return
    if message.get("kind") == bulk.MESSAGE_KIND:
        bulk.process_message(deps, message)
        return
    try:
        run, steps = deps.repo.get_detail(message["runId"])
    except RunNotFound:
        logger.warning("step message for an unknown run", extra={"run_id": message["runId"]})
        return
    if run.status == RunStatus.PENDING:
        run = lifecycle.begin(deps, run)
        if run is None:
            return
        deps.faults.point("executor.after_begin")
    if run.status in TERMINAL:
        _settle_ended(deps, run, steps)
        return
    if run.status != RunStatus.RUNNING:
        return
    _advance(deps, run, {step.index: step for step in steps}, remaining_ms,
             Carrier.of(message, delivery))


def _settle_ended(deps, run: Run, steps: list[Step]) -> None:
    """A message for an ended run: repeat its follow-ups, end every step left running."""
    # Repeat the follow-ups only if a crash cut them short, so a duplicate message sends
    # no second exhausted-runs message.
    if not lifecycle.followed_up(deps, run):
        lifecycle.after_end(deps, run)
    lifecycle.settle_steps(deps, run, steps)


def _close_interrupted(deps, run: Run, step: Step, token: str | None = None) -> None:
    """Close a step the run's ending interrupted before it ran (again): a retry's last failed
    attempt is its result; a step not started, or a delay/wait cut short, is skipped."""
    status = StepStatus.FAILED if step.error else StepStatus.SKIPPED
    try:
        deps.repo.write_step(run.id, step.evolve(
            status=status, completed_at=deps.clock(), next_attempt_at=None,
        ), expect=RUNNING, token=token)
    except StepConflict:
        pass  # settled by a concurrent delivery


def _advance(deps, run: Run, recorded: dict[int, Step], remaining_ms,
             carrier: Carrier) -> None:
    """Run steps in order until the run ends, waits, or must hand over."""
    actions = run.automation.actions
    if _revoked(recorded, carrier):
        # The wake-up an operator replaced with retry-now (or the message that parked the
        # step): the woken attempt runs from its own message, this one does nothing.
        logger.info("revoked wake-up dropped", extra={"run_id": run.id})
        return
    while True:
        index = next((i for i in range(len(actions))
                      if i not in recorded or recorded[i].status not in STEP_TERMINAL), None)
        if index is None:
            _complete(deps, run, recorded)
            return
        now = deps.clock()
        if run.deadline_at is not None and now >= run.deadline_at:
            lifecycle.time_out(deps, run, recorded.get(index))
            return
        parked = recorded.get(index)
        if parked is not None and parked.next_attempt_at and parked.next_attempt_at > now:
            _woken_early(deps, run, parked, now, carrier)
            return
        budget_ms = attempt_timeout_s(actions[index]) * 1000 + HANDOVER_MARGIN_MS
        if remaining_ms() < budget_ms:
            deps.faults.point("executor.before_handover")
            admission.enqueue(deps, run)  # a fresh invocation has the time
            return
        step = _claim(deps, run, index, parked, now, carrier)
        if step is None:
            return
        deps.faults.point("executor.after_claim")
        # Read after the claim, so a cancel written before it stops this step from starting.
        current = deps.repo.get_run(run.id)
        if current.status != RunStatus.RUNNING:
            _close_interrupted(deps, run, step, token=step.claim_token)
            return
        if current.waiting is not None or (step.attempt > current.attempt
                                           and step.type != "delay"):
            _resumed(deps, current, step)
        if not _run_step(deps, run, step, recorded, parked, carrier):
            return
        carrier.delivery.released()


def _revoked(recorded: dict[int, Step], carrier: Carrier) -> bool:
    """True when retry-now revoked the chain this message belongs to."""
    tokens = {carrier.token, carrier.parent} - {None}
    return any(tokens & set(step.revoked) for step in recorded.values())


def _woken_early(deps, run: Run, parked: Step, now: datetime, carrier: Carrier) -> None:
    """A wake-up before the step is due (SQS delays are whole seconds and at most 15 minutes):
    pass the wake-up on. Only the chain the parked step names goes on: a duplicate or
    superseded copy is dropped, so duplicates never multiply the wake-ups."""
    live = parked.claim_token
    if live is not None and live not in (carrier.token, carrier.parent):
        logger.info("stale wake-up dropped", extra={"run_id": run.id, "step": parked.name})
        return
    successor = str(uuid.uuid4())
    # Sent before the step names it: a crash in between leaves this message to come back
    # and try again, and the successor, arriving first, is still accepted by its parent.
    schedule(deps, run, parked.next_attempt_at - now, token=successor, parent=live)
    deps.faults.point("executor.after_wake_up_sent")
    deps.repo.write_step(run.id, parked.evolve(claim_token=successor), expect=RUNNING,
                         token=live)  # StepConflict: redelivered, it finds who won


def _claim(deps, run: Run, index: int, parked: Step | None, now: datetime,
           carrier: Carrier) -> Step | None:
    """Claim the step for one attempt; None when another executor holds it."""
    action = run.automation.actions[index]
    base = parked or Step(index=index, name=action.name, type=action.type,
                          operator=action.operator, started_at=now)
    lease = now + timedelta(seconds=attempt_timeout_s(action)) + LEASE_MARGIN
    # Hidden until the lease ends first: if this executor dies, its message comes back only
    # once the step can be claimed again.
    carrier.delivery.hold(lease)
    deps.faults.point("executor.before_claim")
    try:
        return deps.repo.claim_step(run.id, base, token=str(uuid.uuid4()), now=now,
                                    lease_until=lease)
    except StepConflict as exc:
        carrier.delivery.released()
        logger.info("step held elsewhere", extra={"run_id": run.id, "step": action.name,
                                                   "status": exc.status})
        return None


def _run_step(deps, run: Run, step: Step, recorded: dict[int, Step],
              parked: Step | None, carrier: Carrier) -> bool:
    """Execute one attempt and record it; True when the executor should go on."""
    resuming_wait = step.type == "delay" and parked is not None and parked.next_attempt_at
    if resuming_wait:
        step = step.evolve(attempt=max(1, step.attempt - 1))  # a resumed wait is no new attempt
    outcome = run_attempt(deps, run, step, recorded,
                          wait_started_at=step.started_at if resuming_wait else None,
                          woken_early=bool(resuming_wait and parked.woken_at))
    deps.faults.point("executor.after_action")
    attempts = step.attempts if resuming_wait else step.attempts + (outcome.record,)
    if outcome.wait_until is not None and not resuming_wait:
        waiting = Waiting(kind="delay", step=step.name, step_index=step.index,
                          attempt=step.attempt, until=outcome.wait_until)
        run = _exclude_wait(deps, run, outcome.wait_until - deps.clock(), waiting)
    try:
        going_on = _record(deps, run, step.evolve(attempts=attempts), outcome, recorded,
                           carrier)
    except StepConflict:
        # The sweeper timed the run out (or another executor took over) meanwhile.
        logger.warning("step result lost its claim", extra={"run_id": run.id, "step": step.name})
        return False
    deps.faults.point("executor.after_record")
    return going_on


def _record(deps, run: Run, step: Step, outcome: Outcome, recorded: dict[int, Step],
            carrier: Carrier) -> bool:
    now = deps.clock()
    token = step.claim_token
    if outcome.wait_until is not None:
        _park(deps, run, step.evolve(next_attempt_at=outcome.wait_until), token, carrier)
        return False
    if outcome.error is None:
        done = step.evolve(status=StepStatus.COMPLETED, completed_at=now, output=outcome.output,
                           error=None, next_attempt_at=None)
        recorded[step.index] = deps.repo.write_step(run.id, done, expect=RUNNING, token=token)
        _log_outcome("step_completed", run, done)
        emit("StepDurationMs", done.duration_ms or 0, run.automation_name, unit="ms")
        if outcome.halted:
            lifecycle.finish(deps, run, _completed_status(recorded), attempt=_attempt(recorded),
                             detail={"haltedAt": step.name})
            return False
        return True
    return _record_failure(deps, run, step, outcome.error, recorded, carrier)


def _park(deps, run: Run, parked: Step, claim_token: str | None, carrier: Carrier) -> None:
    """Record a step waiting (retry backoff, delay/wait) and send its wake-up. The parked step
    names this message's token, so this message, redelivered after a crash before the send,
    may still pass the wake-up on; the wake-up itself is accepted as its successor."""
    deps.repo.write_step(run.id, parked.evolve(claim_token=carrier.token, woken_at=None),
                         expect=RUNNING, token=claim_token)
    deps.faults.point("executor.before_wake_up")
    schedule(deps, run, parked.next_attempt_at - deps.clock(), token=str(uuid.uuid4()),
             parent=carrier.token)


def _record_failure(deps, run: Run, step: Step, error: ActionError,
                    recorded: dict[int, Step], carrier: Carrier) -> bool:
    now = deps.clock()
    if error.timed_out and run.deadline_at is not None and now + DEADLINE_SLACK >= run.deadline_at:
        lifecycle.time_out(deps, run, step)  # the run's deadline, not the step's, cut the attempt short
        return False
    automation = run.automation
    action = automation.actions[step.index]
    decision = decide(effective_policy(action, automation), step.attempt, error)
    if decision.retry:
        due = now + timedelta(milliseconds=decision.delay_ms)
        waiting = step.evolve(next_attempt_at=due, error=error.to_json())
        # Said on the run before the wake-up is sent, so the resumed attempt clears it.
        _mark_waiting(deps, run, Waiting(kind="retry", step=step.name, step_index=step.index,
                                         attempt=step.attempt + 1, until=due))
        _park(deps, run, waiting, step.claim_token, carrier)
        _log_outcome("step_retry", run, waiting, delay_ms=decision.delay_ms)
        emit("StepRetries", 1, run.automation_name)
        return False
    failed = step.evolve(status=StepStatus.FAILED, completed_at=now, error=error.to_json(),
                         next_attempt_at=None)
    recorded[step.index] = deps.repo.write_step(run.id, failed, expect=RUNNING,
                                                token=step.claim_token)
    _log_outcome("step_failed", run, failed)
    emit("StepDurationMs", failed.duration_ms or 0, run.automation_name, unit="ms")
    if action.continue_on_error:
        return True
    lifecycle.finish(deps, run, decision.status, attempt=_attempt(recorded),
                     error={"message": error.message, "type": error.error_type,
                            "step": step.name})
    return False


def _log_outcome(action: str, run: Run, step: Step, **extra: Any) -> None:
    """One structured line per step outcome (a stable `action` key, as STYLE asks)."""
    error = (step.error or {}).get("message")
    logger.info(action, extra={"action": action, "run_id": run.id,
                               "automation": run.automation_name, "step": step.name,
                               "attempt": step.attempt, "duration_ms": step.duration_ms,
                               **({"error": error} if error else {}), **extra})


def _completed_status(recorded: dict[int, Step]) -> RunStatus:
    """completed, or completed-with-errors when a step failed under continueOnError."""
    errors = any(step.status == StepStatus.FAILED for step in recorded.values())
    return RunStatus.COMPLETED_WITH_ERRORS if errors else RunStatus.COMPLETED


def _complete(deps, run: Run, recorded: dict[int, Step]) -> None:
    """Every step is recorded: the run completes (with errors under continueOnError)."""
    lifecycle.finish(deps, run, _completed_status(recorded), attempt=_attempt(recorded))


def schedule(deps, run: Run, delay: timedelta, *, token: str | None = None,
             parent: str | None = None) -> None:
    """Wake the run up after `delay`, chaining messages past SQS's 15-minute limit.

    SQS delays are whole seconds, so the delay is rounded up: the step wakes once, at most a
    second late. Rounded down, the last fraction of a second was waited in undelayed hops,
    each an invocation, a read and a message (make bench). A message that arrives early (a
    chained wait past 15 minutes) finds the step not yet due and schedules the remainder.
    """
    if run.deadline_at is not None:
        delay = min(delay, run.deadline_at - deps.clock())  # wake to time the run out
    seconds = max(0, math.ceil(delay.total_seconds()))
    admission.enqueue(deps, run, delay_seconds=min(seconds, MAX_SQS_DELAY_S), token=token,
                      parent=parent)


def _exclude_wait(deps, run: Run, wait: timedelta, waiting: Waiting) -> Run:
    """Move the run's deadline by a delay/wait's length: time parked in a durable wait (up to
    7 days) does not count against the run timeout (at most 15 minutes). The same write
    says what the run waits for (lists show it)."""
    current = deps.repo.get_run(run.id)
    if current.status != RunStatus.RUNNING:
        return run
    try:
        return lifecycle.write_run(
            deps.repo, current, lambda stored: stored.evolve(
                deadline_at=stored.deadline_at + wait if stored.deadline_at else None,
                waiting=waiting),
            expected_status=RunStatus.RUNNING)
    except InvalidTransition:
        return run  # cancelled meanwhile: the wake-up message will find it ended


def _mark_waiting(deps, run: Run, waiting: Waiting) -> None:
    """Say on the run what it waits for: a retry's backoff (lists and `waiting=retry`)."""
    try:
        lifecycle.write_run(deps.repo, deps.repo.get_run(run.id),
                            lambda stored: stored.evolve(waiting=waiting),
                            expected_status=RunStatus.RUNNING)
    except InvalidTransition:
        pass  # ended meanwhile: an ended run waits for nothing


def _attempt(recorded: dict[int, Step]) -> int:
    return max((step.attempt for step in recorded.values()), default=1) or 1


def _resumed(deps, current: Run, step: Step) -> None:
    """A claimed attempt ends the run's wait, and keeps its `attempt` (highest of any step)
    in step with a retry's claim: one write."""
    attempt = step.attempt if step.type != "delay" else 1
    try:
        lifecycle.write_run(
            deps.repo, current, lambda stored: stored.evolve(
                attempt=max(stored.attempt, attempt), waiting=None),
            expected_status=RunStatus.RUNNING)
    except InvalidTransition:
        pass  # cancelled or ended meanwhile
