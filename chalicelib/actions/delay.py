"""delay/wait: a durable wait; the executor parks the step and resumes it, never sleeping."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from ..domain.clock import ms_between
from .base import ActionContext, Output, Props, Wait
from .registry import ActionSpec

MAX_WAIT_MS = 7 * 24 * 3600 * 1000


class WaitProps(Props):
    ms: int = Field(ge=0, le=MAX_WAIT_MS)


def wait(props: WaitProps, ctx: ActionContext) -> Any:
    """First call: Wait(now + ms). Resumed at or after that time, or woken by an operator
    (retry-now): `{waitedMs}`, the time actually waited."""
    if ctx.wait_started_at is None:
        return Wait(until=ctx.after(props.ms))
    until = ctx.wait_started_at + timedelta(milliseconds=props.ms)
    now = ctx.now()
    if now < until and not ctx.woken_early:  # a chained message for waits over 15 minutes
        return Wait(until=until)
    return {"waitedMs": ms_between(ctx.wait_started_at, now)}


class WaitOutput(Output):
    """How long the step actually waited."""

    waited_ms: int


ACTIONS = [ActionSpec("delay", "wait", WaitProps, wait, WaitOutput)]
