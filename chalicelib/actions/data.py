"""data/set (a rendered value) and data/query (JMESPath over an input)."""
from __future__ import annotations

from typing import Any

from pydantic import RootModel, field_validator

from .base import ActionContext, Props
from .filter import compiled, search
from .registry import ActionSpec


class SetProps(Props):
    value: Any


class QueryProps(Props):
    expression: str
    input: Any

    _valid = field_validator("expression")(compiled)


def set_value(props: SetProps, ctx: ActionContext) -> Any:
    """The rendered `value` itself."""
    return props.value


def query(props: QueryProps, ctx: ActionContext) -> Any:
    """The JMESPath `expression` evaluated over `input`."""
    return search(props.expression, props.input)


class SetOutput(RootModel[Any]):
    """The rendered `value` itself, with its type."""


class QueryOutput(RootModel[Any]):
    """The JMESPath result (null when nothing matches)."""


ACTIONS = [
    ActionSpec("data", "set", SetProps, set_value, SetOutput, inline=True),
    ActionSpec("data", "query", QueryProps, query, QueryOutput),
]
