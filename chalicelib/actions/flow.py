"""flow/fail: fail the step on purpose, like a Step Functions Fail state."""
from __future__ import annotations

from typing import NoReturn

from pydantic import Field

from ..domain.retry import ActionError
from .base import ActionContext, Props
from .registry import ActionSpec


class FailProps(Props):
    message: str
    error_type: str = Field(default="FlowFail", min_length=1, max_length=100)


def fail(props: FailProps, ctx: ActionContext) -> NoReturn:
    """Always raises a non-retryable ActionError with the given message and type."""
    raise ActionError(props.message, props.error_type, retryable=False)


ACTIONS = [ActionSpec("flow", "fail", FailProps, fail, inline=True)]
