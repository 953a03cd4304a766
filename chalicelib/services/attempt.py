"""One attempt of one step: render its props, run its action under a deadline, classify."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..actions.base import ActionContext, Halt, Wait
from ..domain.clock import iso
from ..domain.definitions import Action
from ..domain.model import Run, Step
from ..domain.retry import ActionError, as_action_error
from ..domain.statuses import StepStatus
from ..domain.redaction import format_exception
from ..domain.templates import Secrets, build_context, data_view, render

# An attempt must fit in one 900 s executor invocation with the executor's handover margin,
# or the executor would hand the step over to fresh invocations for ever.
MAX_ATTEMPT_TIMEOUT_MS = 890_000
# Actions other than http and the inline ones run on a worker thread so their attempt
# timeout can be enforced.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="action")


@dataclass(frozen=True)
class Outcome:
    """What one attempt produced: an output, a halt, a wait, or an error."""

    output: Any = None
    halted: bool = False
    wait_until: datetime | None = None
    error: ActionError | None = None
    record: dict[str, Any] | None = None  # the attempt record {attempt, startedAt, ...}


def outputs_so_far(run: Run, recorded: dict[int, Step]) -> dict[str, Any]:
    """Step name → output of every completed (or reused) step: what templates may read."""
    return {
        step.name: step.output
        for step in recorded.values()
        if step.status == StepStatus.COMPLETED or step.reused_from
    }


def attempt_timeout_s(action: Action) -> float:
    """The action's per-attempt timeout in seconds."""
    return min(action.attempt_timeout_ms, MAX_ATTEMPT_TIMEOUT_MS) / 1000


def run_attempt(deps, run: Run, step: Step, recorded: dict[int, Step],
                wait_started_at: datetime | None = None, woken_early: bool = False) -> Outcome:
    """Execute `step` once (already claimed) and return its classified outcome."""
    action = run.automation.actions[step.index]
    secrets = Secrets(deps.secrets.get)
    redact = deps.redactor
    started = deps.clock()
    context = build_context(
        trigger_data=run.trigger_data, steps=outputs_so_far(run, recorded), run_id=run.id,
        attempt=step.attempt, automation_name=run.automation_name, secrets=secrets,
    )
    try:
        props = render(action.props, context)
        ctx = ActionContext(
            run_id=run.id, step_name=step.name, props=props, settings=deps.settings,
            automation_name=run.automation_name, attempt=step.attempt, depth=run.depth,
            timeout_s=attempt_timeout_s(action), deadline=run.deadline_at,
            data=data_view(context), start_run=_starter(deps, run, step),
            wait_started_at=wait_started_at, woken_early=woken_early, now=deps.clock,
        )
        result = _execute(deps, action, ctx)
        error, stack = None, None
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded on the step
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        result, error = None, as_action_error(exc)
        # The message (a URL, a response body) may carry a secret: the repository redacts it
        # too, but the error also reaches logs and the retry decision first.
        error.message = redact(error.message)
        error.detail = redact(error.detail)
        stack = redact(format_exception(exc))
    finished = deps.clock()
    record = {
        "attempt": step.attempt, "startedAt": iso(started), "completedAt": iso(finished),
        "error": error.message if error else None,
        "errorType": error.error_type if error else None, "stack": stack,
    }
    if error is not None:
        return Outcome(error=error, record=record)
    if isinstance(result, Halt):
        return Outcome(output=redact(result.output), halted=True, record=record)
    if isinstance(result, Wait):
        return Outcome(wait_until=result.until, record=record)
    return Outcome(output=redact(result), record=record)


def _execute(deps, action: Action, ctx: ActionContext) -> Any:
    """Run the action; others than http (which passes socket timeouts down) and the inline
    ones (data/set, flow/fail: nothing to wait for) on a worker thread, under a deadline."""
    registry = deps.actions
    if action.type == "http" or registry.get(action.type, action.operator).inline:
        return registry.execute(action.type, action.operator, ctx)
    limit = ctx.remaining_s()
    future = _pool.submit(registry.execute, action.type, action.operator, ctx)
    try:
        return future.result(timeout=limit)
    except FutureTimeout:
        raise ActionError(
            f"action timed out after {int(limit * 1000)} ms", "Timeout",
            retryable=True, timed_out=True,
        ) from None


def _starter(deps, run: Run, step: Step):
    """automation/call's start_run: one child run per (run, step), at depth + 1."""
    def start(name: str, trigger_data: Any) -> str:
        from .trigger import start_once, start_run  # noqa: PLC0415

        automation = deps.catalog.get(name)
        child, _ = start_once(
            deps, "call", f"{run.id}:{step.name}",
            lambda run_id: start_run(deps, automation, "manual", trigger_data,
                                     actor=f"call-from:{run.id}", run_id=run_id,
                                     depth=run.depth + 1),
        )
        return child.id

    return start
