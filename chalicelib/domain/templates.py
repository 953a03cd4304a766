"""`{{ path }}` templates over trigger data, step outputs, run fields and secrets (SPEC 2.2),
and the masking of secrets and sensitive headers before anything is stored (SPEC 7)."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from typing import Any

from .errors import TemplateError
from .redaction import (  # noqa: F401 - re-exported: masking is documented with templates
    MIN_SECRET_LENGTH,
    REDACTED,
    Redactor,
    is_sensitive_header,
    mask_headers,
)


_EXPRESSION = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_ROOTS = ("trigger", "steps", "run", "secrets")

SecretLookup = Callable[[str], "str | None"]


class Secrets:
    """Resolves `secrets.<NAME>` through a lookup callable and remembers what it handed out."""

    def __init__(self, lookup: SecretLookup) -> None:
        self._lookup = lookup
        self._used: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name not in self._used:
            value = self._lookup(name)
            if value is None:
                raise TemplateError(f"secret '{name}' is not set", path=f"secrets.{name}")
            self._used[name] = value
        return self._used[name]

    @property
    def values(self) -> tuple[str, ...]:
        """The values resolved so far (what `mask` must hide)."""
        return tuple(self._used.values())


def build_context(
    *,
    trigger_data: Any,
    steps: Mapping[str, Any],
    run_id: str,
    attempt: int,
    automation_name: str,
    secrets: SecretLookup | None = None,
) -> dict[str, Any]:
    """The template context of one step attempt; `secrets` is a callable, never a dict."""
    return {
        "trigger": {"data": trigger_data},
        "steps": dict(steps),
        "run": {"id": run_id, "attempt": attempt, "automationName": automation_name},
        "secrets": secrets,
    }


def data_view(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context without secrets: what JMESPath conditions may read."""
    return {key: value for key, value in context.items() if key != "secrets"}


def has_template(value: Any) -> bool:
    """True when a string contains a `{{ ... }}` expression."""
    return isinstance(value, str) and _EXPRESSION.search(value) is not None


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside a JSON value; the result is a new value."""
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item, context) for item in value]
    return value


def _render_string(text: str, context: Mapping[str, Any]) -> Any:
    whole = _EXPRESSION.fullmatch(text)
    if whole:
        return deepcopy(resolve(whole.group(1), context))
    # One pass over the template text: substituted data is never scanned again.
    return _EXPRESSION.sub(lambda match: _as_text(resolve(match.group(1), context)), text)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def parse_path(path: str) -> list[str | int]:
    """Split `steps.fetch.body.items[0].id` into keys and list indexes."""
    if not path:
        raise TemplateError("empty template expression", path=path)
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        if path[position] == "." and parts:
            position += 1
        match = _SEGMENT.match(path, position)
        if not match:
            raise TemplateError(f"malformed template path '{path}'", path=path)
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    return parts


def resolve(path: str, context: Mapping[str, Any]) -> Any:
    """The value at `path` in the context; TemplateError naming the path when it is missing."""
    parts = parse_path(path)
    root = parts[0]
    if root not in _ROOTS:
        raise TemplateError(
            f"unknown template root '{root}' in '{path}' (use {', '.join(_ROOTS)})", path=path
        )
    if root == "secrets":
        if len(parts) != 2 or not isinstance(parts[1], str) or context.get("secrets") is None:
            raise TemplateError(f"secrets are referenced as secrets.NAME, not '{path}'", path=path)
        return context["secrets"](parts[1])
    current: Any = context
    for index, part in enumerate(parts):
        current = _step_into(current, part, path, parts[: index + 1])
    return current


def _step_into(current: Any, part: str | int, path: str, walked: list[str | int]) -> Any:
    if isinstance(part, int) and isinstance(current, list) and part < len(current):
        return current[part]
    if isinstance(part, str) and isinstance(current, Mapping) and part in current:
        return current[part]
    shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in walked).lstrip(".")
    raise TemplateError(f"template path '{path}' not found (no '{shown}')", path=path)


def mask(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON value with these secret values and sensitive header values redacted."""
    known = tuple(secrets)
    return Redactor(lambda: known)(value)
