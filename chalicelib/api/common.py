"""Shared pieces of every API route: the blueprint, the bearer authorizer, role checks,
request parsing and the `endpoint` decorator that registers, documents and guards a route.

The authorizer lives here because Chalice names a blueprint authorizer's Lambda handler after
the blueprint's module (`chalicelib.api.common.bearer`).
"""
from __future__ import annotations

import functools
import json
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice import AuthResponse, Blueprint, Response
from chalice.app import AuthRequest, Request
from pydantic import BaseModel, ValidationError

from ..bootstrap import container
from ..domain.errors import Unauthorized, ValidationFailed
from ..observability import logger, observed_authorizer
from ..services.tokens import Role, authenticate, record_use, require_role
from .errors import error_response, validation_failed
from .openapi import document

api = Blueprint(__name__)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Identity:
    """The caller of a protected route, from the authorizer context or the token itself."""

    token_id: str
    role: Role

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"


@observed_authorizer
@api.authorizer(name="bearer")
def bearer(auth_request: AuthRequest) -> AuthResponse:
    """Resolve the bearer token into the request context; the route enforces role and 401."""
    # An unknown token passes with an `authError` context instead of a Deny: a Deny is a 403
    # from API Gateway and Chalice's local gateway alike, and the contract wants a 401.
    box = container()
    try:
        record = authenticate(box.tokens, auth_request.token, box.clock())
    except Unauthorized as exc:
        return AuthResponse(routes=["*"], principal_id="anonymous",
                            context={"authError": exc.message})
    try:
        record_use(box.tokens, record, box.clock())
    except Exception:  # noqa: BLE001 - a missed "last used" must not refuse the caller
        logger.warning("could not record the token's last use", exc_info=True)
    return AuthResponse(routes=["*"], principal_id=f"token:{record.token_id}",
                        context={"tokenId": record.token_id, "role": record.role})


def current_identity(request: Request) -> Identity:
    """Who is calling. The token is looked up again even after the authorizer allowed it:
    API Gateway caches the authorizer's answer per token, and a revoked or expired token
    must be refused on its next request (one read)."""
    context = (request.context or {}).get("authorizer") or {}
    if context.get("authError"):
        raise Unauthorized(context["authError"])
    box = container()
    record = authenticate(box.tokens, request.headers.get("authorization"), box.clock())
    return Identity(token_id=record.token_id, role=Role(record.role))


def authorize(request: Request, required: Role) -> Identity:
    """The caller's identity; Unauthorized (401) or Forbidden (403) when it may not proceed."""
    identity = current_identity(request)
    require_role(identity.role, required)
    return identity


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


MAX_JSON_DEPTH = 64
MAX_KEY_LENGTH = 256  # Idempotency-Key, rendered deduplication keys
# A JSON string (skipped whole) or a bracket; possessive, so a long string is one step.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')


def check_depth(text: str, field: str = "body", limit: int = MAX_JSON_DEPTH) -> None:
    """ValidationFailed naming `field` when JSON text nests deeper than `limit` levels: deep
    values would exhaust the recursion of every later step (parsing, storing, rendering)."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group(0)
        if token in "[{":
            depth += 1
            if depth > limit:
                raise ValidationFailed(
                    f"{field} nests deeper than {limit} levels",
                    [{"field": field, "message": f"at most {limit} levels of nesting"}])
        elif token in "]}":
            depth -= 1


def check_key_length(value: str | None, field: str) -> str | None:
    """ValidationFailed naming `field` when a key is longer than MAX_KEY_LENGTH characters."""
    if value is not None and len(value) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"{field} is longer than {MAX_KEY_LENGTH} characters",
            [{"field": field, "message": f"at most {MAX_KEY_LENGTH} characters"}])
    return value


def loads_json(raw: bytes | str, field: str = "body") -> Any:
    """Strict JSON: NaN, Infinity and numbers too large for a double are refused (ValueError),
    so nothing stored can later be answered as invalid JSON; nesting deeper than 64 levels is
    refused (ValidationFailed naming `field`)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    check_depth(text, field)
    return json.loads(text, parse_float=_finite, parse_constant=_no_constant)


def parse_query(model: type[M], request: Request) -> M:
    """Validate the query string with `model`; list fields take every repeated value."""
    params = request.query_params or {}
    data = {
        key: params.getlist(key) if _is_list_field(model, key) else params[key]
        for key in params
    }
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc, model) from None


def parse_body(model: type[M], request: Request) -> M:
    """Validate the JSON body with `model`; an empty body counts as `{}`."""
    raw = request.raw_body or b""
    try:
        data = loads_json(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("body is not valid JSON",
                               [{"field": "body", "message": "not valid JSON"}]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc, model) from None


def _is_list_field(model: type[BaseModel], wire_name: str) -> bool:
    for name, info in model.model_fields.items():
        if wire_name in (name, info.alias):
            return typing.get_origin(info.annotation) is list
    return False


def endpoint(
    path: str,
    *,
    summary: str,
    role: Role | None,
    methods: Iterable[str] = ("GET",),
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    path_params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    also: dict[int, tuple[str, type[BaseModel]]] | None = None,
    **route_options: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register, document and guard a route: auth, then parsing, then the view; errors enveloped."""
    # The view gets its URL parameters plus `identity` (when `role` is set; None = public, no
    # authorizer), `query` and `body` (when their models are given); it returns JSON or a Response.
    methods = [method.upper() for method in methods]

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        for method in methods:
            document(path, method, summary, role=role.value if role else None, query=query,
                     body=body, response=response, status=status, errors=errors,
                     path_params=path_params or {}, headers=headers or {}, also=also or {})
        # Any Content-Type is accepted: bodies are parsed (and refused with a 400) by us, and
        # webhook senders post forms and text as well as JSON.
        route_options.setdefault("content_types", ["*/*"])
        api.route(path, methods=methods, authorizer=bearer if role else None,
                  **route_options)(_guarded(view, role, query, body, status))
        return view

    return register


def _guarded(view: Callable[..., Any], role: Role | None, query: type[BaseModel] | None,
             body: type[BaseModel] | None, status: int) -> Callable[..., Response]:
    """The Chalice view around `view`: inputs parsed in order, every error as an envelope."""

    @functools.wraps(view)
    def handle(**url_params: Any) -> Response:
        request = api.current_request
        try:
            inputs: dict[str, Any] = {}
            if role is not None:
                inputs["identity"] = authorize(request, role)
            if query is not None:
                inputs["query"] = parse_query(query, request)
            if body is not None:
                inputs["body"] = parse_body(body, request)
            result = view(**url_params, **inputs)
        except Exception as exc:  # noqa: BLE001 - every error leaves through the envelope
            return error_response(exc)
        return result if isinstance(result, Response) else Response(result, status_code=status)

    return handle
