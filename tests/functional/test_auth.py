"""Bearer-token auth through the Chalice authorizer: 401 without/with a bad token, 403 by role."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from chalice.test import Client

from app import app
from chalicelib.domain.model import Run
from chalicelib.domain.statuses import RunStatus
from chalicelib.services.tokens import create_token
from tests.support.factories import definition

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
RUNS = "/api/automations/runs"


@pytest.fixture
def box(aws_container):
    return aws_container


@pytest.fixture
def client():
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def bearer(box):
    def headers(role: str) -> dict[str, str]:
        _, secret = create_token(box.tokens, role, T0)
        return {"Authorization": f"Bearer {secret}"}

    return headers


@pytest.fixture
def running_run(box) -> Run:
    run = Run(id=str(uuid.uuid4()), automation_name="welcome-email",
              status=RunStatus.RUNNING, trigger_type="manual", trigger_data={},
              created_at=T0, started_at=T0, definition=definition())
    box.repo.create_run(run)
    return run


def test_list_without_a_token_is_401(client, box):
    response = client.http.get(RUNS)
    assert response.status_code == 401


@pytest.mark.parametrize("header", ["Bearer rt_unknown-token", "Basic dXNlcjpwYXNz", "Bearer"])
def test_list_with_a_bad_token_is_a_401_envelope(client, box, header):
    response = client.http.get(RUNS, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json_body["code"] == "UNAUTHORIZED"
    assert response.json_body["success"] is False
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_bad_token_is_rejected_before_input_is_validated(client, box):
    response = client.http.get(f"{RUNS}?pageSize=1000",
                               headers={"Authorization": "Bearer rt_unknown-token"})
    assert response.status_code == 401


def test_viewer_may_read(client, bearer, running_run):
    headers = bearer("viewer")
    assert client.http.get(RUNS, headers=headers).status_code == 200
    assert client.http.get(f"{RUNS}/{running_run.id}", headers=headers).status_code == 200


def test_viewer_cannot_cancel(client, bearer, box, running_run):
    response = client.http.post(f"{RUNS}/{running_run.id}/cancel", headers=bearer("viewer"))
    assert response.status_code == 403
    assert response.json_body["code"] == "FORBIDDEN"
    assert box.repo.get_run(running_run.id).status == RunStatus.RUNNING


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operator_and_admin_may_cancel(client, bearer, running_run, role):
    response = client.http.post(f"{RUNS}/{running_run.id}/cancel", headers=bearer(role))
    assert response.status_code == 200


def test_cancel_without_a_token_is_401_and_changes_nothing(client, box, running_run):
    response = client.http.post(f"{RUNS}/{running_run.id}/cancel")
    assert response.status_code == 401
    assert box.repo.get_run(running_run.id).status == RunStatus.RUNNING


def test_openapi_document_needs_no_token(client, box):
    assert client.http.get("/api/openapi.json").status_code == 200


def test_role_is_enforced_even_where_no_authorizer_ran(box, bearer, running_run):
    """Routes read the token themselves when the runtime gave them no authorizer context."""
    from chalice.app import Request

    from chalicelib.api.common import authorize
    from chalicelib.domain.errors import Forbidden, Unauthorized
    from chalicelib.services.tokens import Role

    def request(headers: dict[str, str]) -> Request:
        return Request({"multiValueQueryStringParameters": None, "headers": headers,
                        "pathParameters": {},
                        "requestContext": {"httpMethod": "POST", "resourcePath": "/"},
                        "body": None, "stageVariables": {}})

    with pytest.raises(Unauthorized):
        authorize(request({}), Role.VIEWER)
    with pytest.raises(Forbidden):
        authorize(request({k.lower(): v for k, v in bearer("viewer").items()}), Role.OPERATOR)
    identity = authorize(request({k.lower(): v for k, v in bearer("admin").items()}),
                         Role.OPERATOR)
    assert identity.role == Role.ADMIN
