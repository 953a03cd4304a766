"""The error envelope: each domain error's HTTP status, code, details and current status."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from chalicelib.api.errors import error_response, validation_failed
from chalicelib.api.models import ListRunsQuery
from chalicelib.domain.errors import (
    AlreadyExists,
    AutomationNotFound,
    Forbidden,
    InvalidTransition,
    PayloadTooLarge,
    RunNotFound,
    TemplateError,
    Unauthorized,
    ValidationFailed,
)


def answer(exc: Exception) -> tuple[int, dict]:
    response = error_response(exc).to_dict()
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ValidationFailed("bad", [{"field": "x", "message": "bad"}]), 400, "VALIDATION_ERROR"),
        (TemplateError("missing path"), 400, "TEMPLATE_ERROR"),
        (Unauthorized("invalid token"), 401, "UNAUTHORIZED"),
        (Forbidden("viewer"), 403, "FORBIDDEN"),
        (RunNotFound("r1"), 404, "NOT_FOUND"),
        (AutomationNotFound("a"), 404, "NOT_FOUND"),
        (InvalidTransition("r1", "completed", "cancelled"), 409, "INVALID_TRANSITION"),
        (AlreadyExists("dup", status="pending"), 409, "ALREADY_EXISTS"),
        (PayloadTooLarge("trigger data over 256 KB"), 413, "PAYLOAD_TOO_LARGE"),
        (RuntimeError("boom"), 500, "INTERNAL_ERROR"),
    ],
)
def test_each_error_maps_to_its_status_and_code(exc, status, code):
    got_status, body = answer(exc)
    assert (got_status, body["code"], body["success"]) == (status, code, False)
    assert isinstance(body["details"], list) and body["message"]


def test_conflicts_carry_the_current_status():
    _, body = answer(InvalidTransition("r1", "completed", "cancelled"))
    assert body["status"] == "completed"


def test_unexpected_errors_do_not_leak_their_text():
    _, body = answer(RuntimeError("secret connection string"))
    assert "secret" not in json.dumps(body)


def test_pydantic_errors_name_each_field_and_enum_choices():
    with pytest.raises(ValidationError) as caught:
        ListRunsQuery.model_validate({"status": ["failed", "nope"], "pageSize": "0",
                                      "triggerType": "sms"})
    failed = validation_failed(caught.value, ListRunsQuery)
    by_field = {detail["field"]: detail for detail in failed.details}
    assert set(by_field) == {"status", "pageSize", "triggerType"}
    assert "pending" in by_field["status"]["allowed"]
    assert by_field["triggerType"]["allowed"] == ["manual", "webhook", "cron",
                                                  "automation-failure"]
    assert "allowed" not in by_field["pageSize"]
    assert failed.message == "invalid pageSize, status, triggerType"
