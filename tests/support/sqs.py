"""Drive the step worker from the real (moto) step queue, as Lambda's SQS mapping would."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.local.pollers import failed_message_ids, lambda_context, sqs_event


def step_handler():
    """The Lambda function `execute_steps` exactly as app.py registers it."""
    import app  # noqa: PLC0415 - after the environment is set

    return app.app.handler_map["execute_steps"]


def deliver(deps, messages: list[dict[str, Any]], *, times: int = 1,
            handler: Callable | None = None) -> set[str]:
    """Hand received messages to the step handler (`times` deliveries each, new message ids
    per delivery); delete the ones it did not report as failed. Returns failed ids."""
    handler = handler or step_handler()
    queue = deps.step_queue
    failed: set[str] = set()
    for delivery in range(times):
        batch = [dict(m, MessageId=f"{m['MessageId']}-{delivery}") for m in messages]
        for message in batch:
            event = sqs_event([message], queue.arn, deps.settings.region)
            failed |= failed_message_ids(handler(event, lambda_context("execute_steps", 900)()))
    for message in messages:
        if not any(f.startswith(message["MessageId"]) for f in failed):
            queue.delete(message["ReceiptHandle"])
    return failed


def run_until(deps, done: Callable[[], bool], *, timeout_s: float = 30, times: int = 1) -> None:
    """Receive and deliver step messages until `done()` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the timeout")
        messages = deps.step_queue.receive(max_messages=10, wait_seconds=0)
        if messages:
            deliver(deps, messages, times=times)
        else:
            time.sleep(0.05)


def run_terminal(deps, run_id: str, **kwargs: Any):
    """Deliver step messages until the run reaches a terminal status; returns the run."""
    from chalicelib.domain.statuses import TERMINAL  # noqa: PLC0415

    run_until(deps, lambda: deps.repo.get_run(run_id).status in TERMINAL, **kwargs)
    return deps.repo.get_run(run_id)
