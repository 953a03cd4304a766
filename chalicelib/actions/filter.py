"""filter/continue: halt the run (as completed) when a JMESPath condition is false."""
from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import field_validator

from ..domain.retry import ActionError
from .base import ActionContext, Halt, Output, Props
from .registry import ActionSpec


def compiled(expression: str) -> str:
    """Check that `expression` is valid JMESPath (used by the props validators)."""
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError("invalid JMESPath expression: " + " ".join(str(exc).split())) from None
    return expression


def search(expression: str, data: Any) -> Any:
    """Evaluate JMESPath; evaluation errors are non-retryable action errors."""
    try:
        return jmespath.search(expression, data)
    except JMESPathError as exc:
        raise ActionError(f"JMESPath '{expression}' failed: {exc}", "ExpressionError",
                          retryable=False) from exc


class ContinueProps(Props):
    condition: str

    _valid = field_validator("condition")(compiled)


def continue_if(props: ContinueProps, ctx: ActionContext) -> Any:
    """`{passed: true}` when the condition holds over {trigger, steps, run}; else Halt."""
    # JMESPath truthiness: false, null, "", [] and {} do not pass.
    if search(props.condition, ctx.data):
        return {"passed": True}
    return Halt({"passed": False})


class ContinueOutput(Output):
    """`passed: true` and the run goes on; `passed: false` ends the run as completed."""

    passed: bool


ACTIONS = [ActionSpec("filter", "continue", ContinueProps, continue_if, ContinueOutput)]
