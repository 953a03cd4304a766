"""SQS consumers: the step worker and the step DLQ consumer. Idempotent per message; one
structured log line per outcome; failed records reported back for redelivery."""
from __future__ import annotations

import json
from typing import Any

from ..bootstrap import container
from ..domain.errors import RunNotFound, StepConflict
from ..domain.statuses import RunStatus, StepStatus, is_terminal
from ..observability import logger
from ..services import lifecycle


def _records(event) -> list[tuple[str, dict[str, Any]]]:
    return [(record.to_dict()["messageId"], json.loads(record.body)) for record in event]


def _remaining(event):
    context = getattr(event, "context", None)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return context.get_remaining_time_in_millis
    return lambda: 900_000


def handle_step_batch(event) -> dict[str, Any]:
    """Process each step message; report the ids of those that raised."""
    from ..services.executor import process_step_message  # noqa: PLC0415

    deps = container()
    remaining = _remaining(event)
    failures = []
    for message_id, body in _records(event):
        try:
            process_step_message(deps, body, remaining)
            logger.info("step message done", extra={"run_id": body.get("runId"),
                                                     "step": body.get("stepIndex")})
        except Exception:  # noqa: BLE001 - redelivered by SQS, then dead-lettered
            logger.exception("step message failed", extra={"run_id": body.get("runId"),
                                                            "step": body.get("stepIndex")})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def handle_dead_letters(event) -> dict[str, Any]:
    """A step message that crashed the executor repeatedly: fail its run and say why."""
    deps = container()
    failures = []
    for message_id, body in _records(event):
        try:
            fail_crashed_run(deps, body)
        except Exception:  # noqa: BLE001
            logger.exception("dead letter not handled", extra={"run_id": body.get("runId")})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def fail_crashed_run(deps, body: dict[str, Any]) -> None:
    """Mark the run `failed` ("executor crashed repeatedly"), its in-flight step too."""
    if body.get("kind") == "failure":
        return  # handler dispatch is best effort once its message keeps crashing
    try:
        run, steps = deps.repo.get_detail(body["runId"])
    except RunNotFound:
        return
    if is_terminal(run.status):
        if not lifecycle.followed_up(deps, run):
            lifecycle.after_end(deps, run)  # it crashed right after the run ended
        return
    if run.status == RunStatus.PENDING:
        run = lifecycle.begin(deps, run, actor="dlq")
    if run is None or run.status != RunStatus.RUNNING:
        return
    error = {"message": "executor crashed repeatedly on this run", "type": "ExecutorCrashed"}
    # Not the message's stepIndex: one invocation may have run on to later steps.
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
    lifecycle.finish(deps, run, RunStatus.FAILED, error=error, actor="dlq")
    logger.warning("run failed by dead letter", extra={"run_id": run.id})
