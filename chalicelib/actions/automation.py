"""automation/call: start a run of another automation asynchronously (depth ≤ 10)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ..domain.errors import DomainError
from ..domain.retry import ActionError
from .base import MAX_CALL_DEPTH, ActionContext, Output, Props
from .registry import ActionSpec


class CallProps(Props):
    automation: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=100)
    trigger_data: Any = Field(default_factory=dict)


def call(props: CallProps, ctx: ActionContext) -> dict[str, Any]:
    """`{runId}` of the started run; the executor's start_run dedupes on the idempotency key."""
    if ctx.depth + 1 > MAX_CALL_DEPTH:
        raise ActionError(
            f"automation/call nesting deeper than {MAX_CALL_DEPTH}", "CallDepthExceeded",
            retryable=False, detail={"depth": ctx.depth},
        )
    if ctx.start_run is None:
        raise ActionError("automation/call needs the executor's start_run", "ConfigurationError",
                          retryable=False)
    try:
        run_id = ctx.start_run(props.automation, props.trigger_data)
    except DomainError as exc:  # unknown or disabled automation, oversized payload, ...
        raise ActionError(exc.message, type(exc).__name__, retryable=False) from exc
    return {"runId": run_id}


class CallOutput(Output):
    """The started run (it runs on its own; this step does not wait for it)."""

    run_id: str


ACTIONS = [ActionSpec("automation", "call", CallProps, call, CallOutput)]
