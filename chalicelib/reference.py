"""The action and trigger reference, docs/reference.md, generated from the pydantic models.

`make docs` (`python -m chalicelib.reference`) rewrites it; `--check` exits 1 when the file
is not what the models say (a test runs the same check).
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .actions.registry import ActionSpec, default_registry
from .domain import trigger_data
from .domain.definitions import (
    Automation,
    CronTrigger,
    FailureTrigger,
    ManualTrigger,
    WebhookTrigger,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "reference.md"
TRIGGERS: list[tuple[type[BaseModel], type[BaseModel], str]] = [
    (ManualTrigger, trigger_data.ManualData,
     "`POST /api/automations/{name}/trigger` with `{\"triggerData\": ...}` (operator token)."),
    (WebhookTrigger, trigger_data.WebhookData,
     "`ANY /api/automations/{name}/webhook`; signed with `X-Signature-256` when `secret` is set."),
    (CronTrigger, trigger_data.CronData,
     "The minute tick starts one run per due minute (5-field `expression` in `timezone`)."),
    (FailureTrigger, trigger_data.FailureData,
     "One run per matching handler when a run ends in a watched status."),
]


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def _type(schema: dict[str, Any]) -> str:
    """A short, readable type for one JSON Schema property."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " \\| ".join(json.dumps(value) for value in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " \\| ".join(_type(branch) for branch in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map[string, {_type(schema['additionalProperties'])}]"
    return {None: "any", "null": "null"}.get(kind, kind)


_LIMITS = (("minimum", "≥ {}"), ("exclusiveMinimum", "> {}"), ("maximum", "≤ {}"),
           ("minLength", "length ≥ {}"), ("maxLength", "length ≤ {}"),
           ("minItems", "items ≥ {}"), ("pattern", "matches `{}`"))


def _limits(schema: dict[str, Any]) -> str:
    found = [template.format(schema[key]) for key, template in _LIMITS if key in schema]
    for branch in schema.get("anyOf", []):
        found += [template.format(branch[key]) for key, template in _LIMITS if key in branch]
    return ", ".join(found)


def _default(schema: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" not in schema:
        return "optional"
    return f"`{json.dumps(schema['default'], ensure_ascii=False)}`"


def _fields(schema: dict[str, Any]) -> list[str]:
    props = schema.get("properties", {})
    if "enum" in schema:
        return [f"One of {_type(schema)}."]
    if not props:
        kind = _type(schema)
        return ["Any JSON value." if kind == "any" else f"A value of type {kind}."]
    required = set(schema.get("required", []))
    lines = ["| field | type | default | constraints | description |",
             "|---|---|---|---|---|"]
    for name, prop in props.items():
        description = (prop.get("description") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {_type(prop)} | {_default(prop, name in required)} | "
                     f"{_limits(prop)} | {description} |")
    return lines


_shown: set[str] = set()  # models already given a section (links point there)


def _model(model: type[BaseModel] | None, heading: str | None = None,
           level: str = "####") -> list[str]:
    """A model's fields as a table, then each model it refers to (once in the document)."""
    if model is None:
        return []
    schema = model.model_json_schema(by_alias=True, mode="validation")
    lines = [f"{level} {heading}", ""] if heading else []
    lines += _fields(schema) + [""]
    for name, sub in schema.get("$defs", {}).items():
        if name in _shown:
            continue
        _shown.add(name)
        lines += [f'<a id="{name.lower()}"></a>', f"{level} {name}", ""]
        if sub.get("description"):
            lines += [sub["description"], ""]
        lines += _fields(sub) + [""]
    return lines


def _action(spec: ActionSpec) -> list[str]:
    module = sys.modules[spec.handler.__module__]
    lines = [f"### `{spec.kind}`", "", _first_line(module), ""]
    lines += _model(spec.props_model, "props")
    lines += ["#### output", ""]
    if spec.output is None:
        lines += ["None: the step never completes (it fails with the given `errorType`).", ""]
    else:
        doc = _first_line(spec.output)
        lines += [doc, ""] if doc else []
        lines += _model(spec.output)
    return lines


def render() -> str:
    """The whole reference as Markdown."""
    lines = [
        "# Action and trigger reference",
        "",
        "<!-- Generated by `make docs` (python -m chalicelib.reference) from the pydantic "
        "models; do not edit. -->",
        "",
        "Every key is camelCase in YAML. A `{{...}}` template may stand for any typed value "
        "and is checked again once rendered; a string that is exactly one expression keeps "
        "the value's type. A step's output is what later templates read as "
        "`{{steps.<name>...}}`.",
        "",
        "## Automation",
        "",
    ]
    _shown.clear()
    _shown.update(definition.__name__ for definition, _, _ in TRIGGERS)  # under Triggers
    lines += _model(Automation, None)
    lines += ["## Triggers", ""]
    for definition, data, how in TRIGGERS:
        kind = definition.model_fields["type"].annotation.__args__[0]
        lines += [f'<a id="{definition.__name__.lower()}"></a>', f"### `{kind}`", "", how, ""]
        lines += _model(definition, "definition (`trigger:`)")
        lines += ["#### `trigger.data`", "", _first_line(data), ""] + _model(data)
    lines += ["## Actions", ""]
    registry = default_registry()
    for kind in registry.known():
        lines += _action(registry.get(*kind.split("/")))
    lines += _bulk()
    return "\n".join(lines).rstrip() + "\n"


def _bulk() -> list[str]:
    """The bodies of the bulk routes and the batch they answer."""
    from .api.batch_models import BatchOut, BulkCancelIn, BulkReplayIn  # noqa: PLC0415

    return [
        "## Bulk replay and cancel", "",
        "`POST /api/automations/runs/replay` and `POST /api/automations/runs/cancel` (operator) "
        "take the list filters in a JSON body (at least one) and answer 202 with a batch id; "
        "`dryRun: true` answers 200 with the count and the first ids and changes nothing. "
        "The step worker works through the batch at `BULK_RATE_PER_S` runs a second; "
        "`GET /api/automations/batches/{id}` (viewer) shows its progress. A repeated request "
        "with the same `Idempotency-Key` (24 h) answers the same batch; without one it starts "
        "a new batch, which skips every run already replayed (unless `again`). A bulk cancel "
        "cancels `pending` and `running` runs and counts the others as skipped.", "",
    ] + _model(BulkReplayIn, "replay body") + _model(BulkCancelIn, "cancel body") + _model(
        BatchOut, "batch (`GET /api/automations/batches/{id}`)")


def main(argv: list[str] | None = None) -> int:
    """Write docs/reference.md, or with --check report whether it is current."""
    parser = argparse.ArgumentParser(prog="python -m chalicelib.reference")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
