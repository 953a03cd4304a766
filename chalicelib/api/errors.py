"""The one place where errors become HTTP answers: the `{"success": false, ...}` envelope."""
from __future__ import annotations

import typing
from enum import Enum
from typing import Any

from chalice import Response
from pydantic import BaseModel, ValidationError

from ..domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from ..observability import logger

# Most specific first; any other DomainError is a 400 (bad input the service refused).
_STATUS_CODES: tuple[tuple[type[DomainError], int], ...] = (
    (ValidationFailed, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (RateLimited, 429),
)


def status_code_for(exc: DomainError) -> int:
    """The HTTP status of a domain error."""
    return next((code for kind, code in _STATUS_CODES if isinstance(exc, kind)), 400)


def envelope(code: str, message: str, details: list[dict[str, Any]] | None = None,
             **extra: Any) -> dict[str, Any]:
    """The error body every non-2xx answer of the API carries."""
    return {"success": False, "code": code, "message": message, "details": details or [],
            **extra}


def error_response(exc: Exception) -> Response:
    """Map an exception raised by parsing or a service to its HTTP answer."""
    if isinstance(exc, ValidationError):
        exc = validation_failed(exc)
    if not isinstance(exc, DomainError):
        logger.exception("unhandled error in API route")
        return Response(envelope("INTERNAL_ERROR", "internal error"), status_code=500)
    extra: dict[str, Any] = {"status": exc.status} if isinstance(exc, Conflict) else {}
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else {}
    if isinstance(exc, RateLimited):
        extra.update(limit=exc.limit, retryAfter=exc.retry_after)
        headers["Retry-After"] = str(exc.retry_after)
    body = envelope(exc.code, exc.message, getattr(exc, "details", None), **extra)
    return Response(body, status_code=status_code_for(exc), headers=headers)


def validation_failed(exc: ValidationError, model: type[BaseModel] | None = None) -> ValidationFailed:
    """Turn pydantic errors into ValidationFailed naming each field (and allowed enum values)."""
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        detail: dict[str, Any] = {
            "field": ".".join(loc) or None,
            "message": error["msg"].removeprefix("Value error, "),
            "type": error["type"],
        }
        allowed = _allowed_values(model, loc) if model and loc else None
        if allowed:
            detail["allowed"] = allowed
        details.append(detail)
    fields = sorted({d["field"] for d in details if d["field"]})
    return ValidationFailed(f"invalid {', '.join(fields) or 'request'}", details)


def _allowed_values(model: type[BaseModel], loc: list[str]) -> list[Any] | None:
    """The enum or literal values a top-level field accepts, found by its wire name."""
    for name, info in model.model_fields.items():
        if loc[0] in (name, info.alias):
            return _choices(info.annotation)
    return None


def _choices(annotation: Any) -> list[Any] | None:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [member.value for member in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        found = _choices(arg)
        if found:
            return found
    return None
