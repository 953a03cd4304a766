"""Token management over the API (admin): issue, list, revoke, expiry; a revoked token is
refused on its very next request, even when API Gateway still holds the authorizer's answer."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from chalice.test import Client

from app import app
from chalicelib.api.common import bearer as authorizer
from chalicelib.api.tokens import IssuedTokenOut, TokenListOut
from chalicelib.services.tokens import create_token

TOKENS = "/api/tokens"
RUNS = "/api/automations/runs"


class Clock:
    def __init__(self, start) -> None:
        self.now = start

    def __call__(self):
        return self.now


@pytest.fixture
def clock(aws_container):
    ticking = Clock(aws_container.clock())
    aws_container.overrides["clock"] = ticking
    return ticking


@pytest.fixture
def admin(aws_container, clock):
    _, secret = create_token(aws_container.tokens, "admin", clock(), description="root")
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


@pytest.fixture
def client(aws_container):
    with Client(app) as test_client:
        yield test_client


def _issue(client, admin, **body):
    response = client.http.post(TOKENS, headers=admin, body=json.dumps(body))
    assert response.status_code == 201, response.body
    IssuedTokenOut.model_validate(response.json_body)
    return response.json_body


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_an_issued_token_works_and_is_listed_without_its_secret(client, admin, clock):
    issued = _issue(client, admin, role="viewer", name="dashboard", expiresInDays=30)
    assert issued["token"].startswith("rt_") and issued["role"] == "viewer"
    assert issued["expiresAt"] is not None and issued["lastUsedAt"] is None
    assert client.http.get(RUNS, headers=_auth(issued["token"])).status_code == 200

    listed = client.http.get(TOKENS, headers=admin)
    assert listed.status_code == 200
    TokenListOut.model_validate(listed.json_body)
    by_id = {t["id"]: t for t in listed.json_body["tokens"]}
    assert by_id[issued["id"]]["name"] == "dashboard"
    assert by_id[issued["id"]]["lastUsedAt"] is not None  # recorded by the authorizer
    assert issued["token"] not in listed.body.decode()


def test_a_revoked_token_gets_a_401_on_its_next_request(client, admin):
    issued = _issue(client, admin, role="operator", name="ci")
    assert client.http.get(RUNS, headers=_auth(issued["token"])).status_code == 200

    revoked = client.http.delete(f"{TOKENS}/{issued['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json_body == {"id": issued["id"],
                                                                "revoked": True}
    after = client.http.get(RUNS, headers=_auth(issued["token"]))
    assert after.status_code == 401 and after.json_body["code"] == "UNAUTHORIZED"
    assert issued["id"] not in {t["id"] for t in
                                client.http.get(TOKENS, headers=admin).json_body["tokens"]}
    again = client.http.delete(f"{TOKENS}/{issued['id']}", headers=admin)
    assert again.status_code == 404


def test_revocation_holds_while_the_gateway_caches_the_authorizers_answer(
        client, admin, monkeypatch):
    issued = _issue(client, admin, role="admin", name="laptop")
    answers = []
    original = authorizer.func

    def remembering(auth_request):
        answers.append(original(auth_request))
        return answers[-1]

    monkeypatch.setattr(authorizer, "func", remembering)
    assert client.http.get(RUNS, headers=_auth(issued["token"])).status_code == 200
    allowed = answers[-1]
    # API Gateway keeps the Allow for the token's TTL: the authorizer is not asked again.
    monkeypatch.setattr(authorizer, "func", lambda auth_request: allowed)
    assert client.http.delete(f"{TOKENS}/{issued['id']}", headers=admin).status_code == 200
    assert client.http.get(RUNS, headers=_auth(issued["token"])).status_code == 401


def test_an_expired_token_is_refused(client, admin, clock):
    issued = _issue(client, admin, role="viewer", name="temp", expiresInDays=1)
    assert client.http.get(RUNS, headers=_auth(issued["token"])).status_code == 200
    clock.now += timedelta(days=1, seconds=1)
    response = client.http.get(RUNS, headers=_auth(issued["token"]))
    assert response.status_code == 401 and "expired" in response.json_body["message"]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_manage_tokens(client, aws_container, clock, role):
    _, secret = create_token(aws_container.tokens, role, clock())
    headers = {**_auth(secret), "Content-Type": "application/json"}
    assert client.http.get(TOKENS, headers=headers).status_code == 403
    assert client.http.post(TOKENS, headers=headers,
                            body=json.dumps({"role": "admin", "name": "x"})).status_code == 403
    assert client.http.delete(f"{TOKENS}/abc", headers=headers).status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"role": "root", "name": "x"}, "role"),
    ({"role": "viewer"}, "name"),
    ({"role": "viewer", "name": "x", "expiresInDays": 0}, "expiresInDays"),
])
def test_bad_token_requests_name_the_field(client, admin, body, field):
    response = client.http.post(TOKENS, headers=admin, body=json.dumps(body))
    assert response.status_code == 400
    assert field in [d["field"] for d in response.json_body["details"]]
