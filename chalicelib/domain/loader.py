"""Reads automation YAML files into a Catalog, collecting every problem with file, automation
and field, so one start-up shows all that is wrong (SPEC 2)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import yaml
from pydantic import ValidationError

from .definitions import Automation, Catalog, FailureTrigger
from .errors import DefinitionError


class Problem(NamedTuple):
    """One validation problem: the field's path and what is wrong with it."""

    path: str
    message: str


class PropsValidator(Protocol):
    """What the loader needs from the action registry."""

    def has(self, action_type: str, operator: str) -> bool: ...

    def known(self) -> list[str]: ...

    def validate_props(self, action_type: str, operator: str, props: Any) -> list[Problem]: ...


def loc_path(loc: Sequence[Any]) -> str:
    """`('actions', 1, 'props', 'url')` → `actions[1].props.url`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _input_loc(loc: Sequence[Any], data: Any, error_type: str) -> list[Any]:
    """The parts of a pydantic `loc` that exist in the input (drops union and tag labels)."""
    kept: list[Any] = []
    current = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        elif not (last and error_type in ("missing", "extra_forbidden")):
            continue
        kept.append(part)
    return kept


def error_problems(
    error: ValidationError, data: Any, skip: Callable[[Any], bool] = lambda _: False
) -> list[Problem]:
    """The pydantic errors for input `data` as problems, once per field and message."""
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        if skip(item.get("input")):
            continue
        message = item["msg"].removeprefix("Value error, ")
        problem = Problem(loc_path(_input_loc(item["loc"], data, item["type"])), message)
        if problem not in problems:
            problems.append(problem)
    return problems


def definition_files(root: Path) -> list[Path]:
    """The definition files of `root`: its *.yaml / *.yml files, or `root` itself if a file."""
    if root.is_dir():
        return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if root.is_file():
        return [root]
    raise DefinitionError([f"{root}: no such file or directory"])


def load(root: Path, registry: PropsValidator) -> Catalog:
    """The catalog of every automation under `root`; DefinitionError lists all problems."""
    files = definition_files(root)
    problems: list[str] = []
    origin: dict[str, str] = {}  # automation name -> the file that defined it
    automations: list[Automation] = []
    for file in files:
        for label, name, automation in _read_file(file, registry, problems):
            if name in origin:
                problems.append(f"{label}name: already defined in {origin[name]}")
                continue
            origin[name] = file.name
            if automation is not None:
                automations.append(automation)
    problems += _cross_references(automations, origin)
    if problems:
        raise DefinitionError(problems)
    return Catalog(automations)


def _read_file(file: Path, registry: PropsValidator, problems: list[str]):
    """Yield (message prefix, name, automation or None if invalid); record every problem."""
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(f"{file.name}: not readable YAML: " + " ".join(str(exc).split()))
        return
    if not isinstance(document, dict) or not isinstance(document.get("automations"), list):
        problems.append(f"{file.name}: automations: a list of automations is required")
        return
    problems += [f"{file.name}: {key}: unknown top-level key" for key in document
                 if key != "automations"]
    for index, raw in enumerate(document["automations"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        who = f"automation '{name}'" if isinstance(name, str) else f"automations[{index}]"
        label = f"{file.name}: {who}: "
        found = [f"{label}{p.path}: {p.message}" for p in _props_problems(raw, registry)]
        try:
            automation = Automation.model_validate(raw)
        except ValidationError as exc:
            found[:0] = [f"{label}{p.path or 'automation'}: {p.message}"
                         for p in error_problems(exc, raw)]
            automation = None
        problems += found
        if isinstance(name, str):
            yield label, name, None if found else automation


def _props_problems(raw: Any, registry: PropsValidator) -> list[Problem]:
    """Unknown action kinds and invalid props of each action entry of a raw automation."""
    actions = raw.get("actions") if isinstance(raw, dict) else None
    problems: list[Problem] = []
    for index, action in enumerate(actions if isinstance(actions, list) else []):
        kind = action.get("type") if isinstance(action, dict) else None
        operator = action.get("operator") if isinstance(action, dict) else None
        if not isinstance(kind, str) or not isinstance(operator, str):
            continue  # the model reports the missing or mistyped field
        if not registry.has(kind, operator):
            known = ", ".join(registry.known())
            message = f"unknown action '{kind}/{operator}' (known: {known})"
            problems.append(Problem(f"actions[{index}].type", message))
            continue
        for problem in registry.validate_props(kind, operator, action.get("props") or {}):
            path = f"actions[{index}].props" + (f".{problem.path}" if problem.path else "")
            problems.append(Problem(path, problem.message))
    return problems


def _cross_references(automations: list[Automation], origin: dict[str, str]) -> list[str]:
    """Failure handlers and automation/call steps must name automations that exist."""
    problems = []
    for automation in automations:
        label = f"{origin[automation.name]}: automation '{automation.name}': "
        if isinstance(automation.trigger, FailureTrigger):
            problems += [f"{label}trigger.automations: unknown automation '{name}'"
                         for name in automation.trigger.automations or () if name not in origin]
        for index, action in enumerate(automation.actions):
            target = action.props.get("automation")
            if (action.kind == "automation/call" and isinstance(target, str)
                    and "{{" not in target and target not in origin):
                problems.append(
                    f"{label}actions[{index}].props.automation: unknown automation '{target}'"
                )
    return problems
