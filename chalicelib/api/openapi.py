"""OpenAPI 3.1 registry: each route declares its pydantic models; the document is built from them."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .models import ErrorOut

REF = "#/components/schemas/{model}"

_ERROR_TEXT = {
    400: "invalid input; `details` names each bad field",
    401: "missing or invalid bearer token",
    403: "the token's role does not allow this",
    404: "unknown run or automation",
    409: "state conflict; `status` is the current status",
    413: "payload too large",
    429: "over the automation's webhook rate limit: `Retry-After` (seconds) says when to try "
         "again, `limit` names the limit; nothing was started",
}


@dataclass(frozen=True)
class Operation:
    """One documented route: path, method, role, and the models of its input and output."""

    path: str
    method: str
    summary: str
    role: str | None = None  # None: public
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # request header → description
    # Other success answers: status → (description, model), e.g. a dry run's 200.
    also: dict[int, tuple[str, type[BaseModel]]] = field(default_factory=dict)


_registry: dict[tuple[str, str], Operation] = {}


def document(path: str, method: str, summary: str, **details: Any) -> Operation:
    """Register (or replace) the documentation of one route; see Operation for the fields."""
    operation = Operation(path=path, method=method.lower(), summary=summary, **details)
    _registry[(path, operation.method)] = operation
    return operation


def operations() -> list[Operation]:
    """Every documented operation, in path then method order."""
    return [_registry[key] for key in sorted(_registry)]


def build_document(title: str = "Automation Runs", version: str = "1.0.0",
                   servers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered operation (with `servers` when given)."""
    ops = operations()
    models = {ErrorOut} | {m for op in ops for m in (op.query, op.body, op.response) if m} | {
        model for op in ops for _, model in op.also.values()}
    keys = [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)]
    schemas, top = models_json_schema(keys, ref_template=REF)
    components = dict(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op, components, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        **({"servers": servers} if servers else {}),
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(op: Operation, components: dict, schemas: dict) -> dict[str, Any]:
    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return schemas[(model, "validation")]

    result: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "parameters": (_path_parameters(op) + _header_parameters(op)
                       + _query_parameters(op, ref(op.query) if op.query else {}, components)),
        "responses": {str(op.status): _content("success", ref(op.response) if op.response else None)},
        "security": [{"bearer": []}] if op.role else [],
    }
    for code, (description, model) in op.also.items():
        result["responses"][str(code)] = _content(description, ref(model))
    if op.role:
        result["x-required-role"] = op.role
        result["description"] = f"Requires a bearer token with role `{op.role}` or higher."
    if op.body:
        result["requestBody"] = {"required": False,
                                 "content": {"application/json": {"schema": ref(op.body)}}}
    for code in sorted(set(op.errors) | _implied_errors(op)):
        result["responses"][str(code)] = _content(_ERROR_TEXT.get(code, "error"), ref(ErrorOut))
        if code == 429:
            result["responses"]["429"]["headers"] = {"Retry-After": {
                "description": "whole seconds until a delivery is accepted again",
                "required": True, "schema": {"type": "integer", "minimum": 1}}}
    return result


def _implied_errors(op: Operation) -> set[int]:
    codes = {400} if op.query or op.body else set()
    return codes | ({401, 403} if op.role else set()) | ({404} if op.path_params else set())


def _content(description: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    schema = schema or {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    names = re.findall(r"{(\w+)}", op.path)
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
             "description": op.path_params.get(name, name)} for name in names]


def _header_parameters(op: Operation) -> list[dict[str, Any]]:
    return [{"name": name, "in": "header", "required": False, "schema": {"type": "string"},
             "description": text} for name, text in op.headers.items()]


def _query_parameters(op: Operation, ref: dict[str, Any], components: dict) -> list[dict[str, Any]]:
    """One query parameter per property of the query model (whose schema sits in components)."""
    if op.query is None:
        return []
    schema = components[ref["$ref"].rsplit("/", 1)[-1]]
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _not_null(prop)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("type") == "array":
            param.update(style="form", explode=True)
        if prop.get("type") == "object":
            param.update(style="deepObject", explode=True)
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """`X | None` as just X: an absent query parameter is how a client says None."""
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    rest = {k: v for k, v in prop.items() if k not in ("anyOf", "title", "default")}
    if len(branches) == 1 and len(prop["anyOf"]) == 2:
        return {**branches[0], **rest}
    return {k: v for k, v in prop.items() if k != "title"}


def _operation_id(op: Operation) -> str:
    words = re.findall(r"[A-Za-z]+", op.path.replace("{", " by ").replace("api", "", 1))
    return op.method + "".join(word[:1].upper() + word[1:] for word in words)
