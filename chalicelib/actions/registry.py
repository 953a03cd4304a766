"""The action registry: `type/operator` → props model + handler, for loading and executing."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..domain.loader import Problem, error_problems
from ..domain.errors import DomainError
from ..domain.retry import ActionError
from ..domain.templates import has_template
from .base import ActionContext

Handler = Callable[[Any, ActionContext], Any]


class UnknownAction(DomainError):
    """No action is registered under this `type/operator`."""

    code = "UNKNOWN_ACTION"

    def __init__(self, action_type: str, operator: str) -> None:
        super().__init__(f"unknown action '{action_type}/{operator}'",
                         type=action_type, operator=operator)


@dataclass(frozen=True)
class ActionSpec:
    """One action: its key, the model its props must satisfy, and its handler."""

    type: str
    operator: str
    props_model: type[BaseModel]
    handler: Handler
    output: type[BaseModel] | None = None  # the output's shape; None: it never completes
    # No I/O, and work in proportion to its props (rendered already, on the executor's
    # thread): run there, not handed to a worker thread to be timed (a hand-off per step).
    inline: bool = False

    @property
    def kind(self) -> str:
        return f"{self.type}/{self.operator}"


class Registry:
    """Action specs by `type/operator`."""

    def __init__(self, specs: Iterable[ActionSpec] = ()) -> None:
        self._specs: dict[tuple[str, str], ActionSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ActionSpec) -> None:
        """Add (or replace, in tests) the action `spec.type/spec.operator`."""
        self._specs[(spec.type, spec.operator)] = spec

    def has(self, action_type: str, operator: str) -> bool:
        return (action_type, operator) in self._specs

    def get(self, action_type: str, operator: str) -> ActionSpec:
        """The spec of `type/operator`; UnknownAction otherwise."""
        try:
            return self._specs[(action_type, operator)]
        except KeyError:
            raise UnknownAction(action_type, operator) from None

    def known(self) -> list[str]:
        """Every registered `type/operator`, sorted."""
        return sorted(spec.kind for spec in self._specs.values())

    def validate_props(self, action_type: str, operator: str, props: Any) -> list[Problem]:
        """Load-time check of raw props; a `{{...}}` string is accepted for any typed value."""
        spec = self.get(action_type, operator)
        try:
            spec.props_model.model_validate(props)
        except ValidationError as exc:
            # A template stands for any value; it is checked again once rendered.
            return error_problems(exc, props, skip=has_template)
        return []

    def parse(self, action_type: str, operator: str, props: Any) -> BaseModel:
        """Rendered props as the action's model; a non-retryable ActionError when invalid."""
        spec = self.get(action_type, operator)
        try:
            return spec.props_model.model_validate(props)
        except ValidationError as exc:
            problems = "; ".join(
                f"{p.path or 'props'}: {p.message}" for p in error_problems(exc, props)
            )
            raise ActionError(f"invalid props: {problems}", "ValidationError",
                              retryable=False) from None

    def execute(self, action_type: str, operator: str, ctx: ActionContext) -> Any:
        """Validate `ctx.props` and run the handler: an output, Halt or Wait; or ActionError."""
        props = self.parse(action_type, operator, ctx.props)
        return self.get(action_type, operator).handler(props, ctx)


def default_registry() -> Registry:
    """Every bundled action."""
    from . import automation, aws, data, delay, email, filter, flow, http  # noqa: PLC0415

    modules = (http, filter, data, delay, aws, email, automation, flow)
    return Registry(spec for module in modules for spec in module.ACTIONS)
