"""GET /api/openapi.json: public, valid OpenAPI 3.1, every route with parameters and responses."""
from __future__ import annotations

import pytest
from chalice.test import Client
from openapi_spec_validator import validate

from app import app
from chalicelib.api.pages import PATHS as PAGE_PATHS
from chalicelib.domain.statuses import RunStatus


@pytest.fixture(scope="module")
def document() -> dict:
    with Client(app) as client:
        response = client.http.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json_body


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_of_the_app_is_documented(document):
    routes = {(path, method.lower()) for path, methods in app.routes.items()
              for method in methods if path not in PAGE_PATHS}
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == documented


def test_every_operation_declares_its_path_parameters_and_responses(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            path_params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert path_params == set(part.strip("{}") for part in path.split("/")
                                      if part.startswith("{")), (path, method)
            assert any(code.startswith("2") for code in op["responses"]), (path, method)


def test_protected_operations_declare_bearer_security_and_auth_errors(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            if op["security"]:
                assert {"401", "403"} <= set(op["responses"]), (path, method)
            else:
                assert "x-required-role" not in op


def test_openapi_route_is_public_and_cancel_needs_operator(document):
    assert document["paths"]["/api/openapi.json"]["get"]["security"] == []
    cancel = document["paths"]["/api/automations/runs/{id}/cancel"]["post"]
    assert cancel["x-required-role"] == "operator"
    assert {"200", "401", "403", "404", "409"} <= set(cancel["responses"])


def test_list_parameters_come_from_the_query_model(document):
    op = document["paths"]["/api/automations/runs"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {"automationName", "status", "triggerType", "replayOf", "since",
                           "until", "pageSize", "page", "cursor", "waiting", "triggerData"}
    assert params["triggerData"]["style"] == "deepObject"
    assert params["waiting"]["schema"]["enum"] == ["retry", "delay"]
    assert params["status"]["schema"]["type"] == "array"
    status_ref = params["status"]["schema"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert document["components"]["schemas"][status_ref]["enum"] == [s.value for s in RunStatus]
    assert params["pageSize"]["schema"]["maximum"] == 100
    assert params["pageSize"]["schema"]["minimum"] == 1


def test_responses_reference_the_response_models(document):
    schemas = document["components"]["schemas"]
    op = document["paths"]["/api/automations/runs/{id}"]["get"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    detail = schemas[ref.rsplit("/", 1)[-1]]
    assert {"steps", "events", "status", "cancelledAt"} <= set(detail["properties"])
    error = op["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorOut")


def test_the_webhook_route_documents_duplicates_and_its_429_with_retry_after(document):
    for method in ("get", "post", "put", "patch", "delete"):
        answers = document["paths"]["/api/automations/{name}/webhook"][method]["responses"]
        assert answers["200"]["content"] == answers["202"]["content"]  # {id, deduplicated}
        answer = answers["429"]
        assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer"
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    error = document["components"]["schemas"]["ErrorOut"]["properties"]
    assert {"limit", "retryAfter"} <= set(error)
