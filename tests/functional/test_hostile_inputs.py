"""Hostile input answers a 4xx naming the field, never a 5xx (SPEC 6): JSON nested far too
deep, over-long keys, forged cursors; and what the local gateway answers itself (no
Authorization, an unknown path) comes in the error envelope."""
from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.request
from urllib.error import HTTPError

import pytest
from chalice.config import Config
from chalice.test import Client

from app import app
from chalicelib.local.gateway import local_server as create_server
from tests.support.apps import bearer

AUTOMATIONS = """
automations:
  - name: manual
    trigger: { type: manual }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data}}" } }
  - name: public
    trigger: { type: webhook, deduplicationKey: "{{trigger.data.body.id}}" }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
"""
DEEP = "[" * 1000 + "]" * 1000
RUNS = "/api/automations/runs"


@pytest.fixture
def deps(wire):
    return wire(AUTOMATIONS)


@pytest.fixture
def headers(deps):
    return bearer(deps, "admin")


def _field(response) -> list[str]:
    return [d["field"] for d in response.json_body["details"]]


def test_deeply_nested_trigger_data_is_a_400_naming_the_body(client, headers):
    body = '{"triggerData": ' + DEEP + "}"
    response = client.http.post("/api/automations/manual/trigger", headers=headers, body=body)
    assert response.status_code == 400, response.body
    assert _field(response) == ["body"]


def test_sixty_four_levels_are_accepted(client, headers):
    body = '{"triggerData": ' + "[" * 63 + "]" * 63 + "}"
    response = client.http.post("/api/automations/manual/trigger", headers=headers, body=body)
    assert response.status_code == 202, response.body


def test_deeply_nested_body_on_the_public_webhook_is_a_400(client, deps):
    response = client.http.post("/api/automations/public/webhook", body=DEEP,
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.body
    assert _field(response) == ["body"]


def test_a_deduplication_key_over_256_characters_is_a_400(client, deps):
    response = client.http.post("/api/automations/public/webhook",
                                body=json.dumps({"id": "k" * 2100}),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.body
    assert _field(response) == ["deduplicationKey"]


@pytest.mark.parametrize("path", ["/api/automations/manual/trigger"])
def test_an_idempotency_key_over_256_characters_is_a_400(client, headers, path):
    response = client.http.post(path, headers={**headers, "Idempotency-Key": "i" * 2100},
                                body=b"{}")
    assert response.status_code == 400, response.body
    assert _field(response) == ["Idempotency-Key"]


def test_replay_refuses_an_over_long_idempotency_key(client, headers):
    response = client.http.post(f"{RUNS}/00000000-0000-4000-8000-000000000000/replay",
                                headers={**headers, "Idempotency-Key": "i" * 300}, body=b"{}")
    assert response.status_code == 400, response.body
    assert _field(response) == ["Idempotency-Key"]


def _forge(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _forge('{"k": ' + DEEP + ', "f": "x", "p": 2}'),  # deep JSON, no signature
    _forge('{"k": "2026-01-01T00:00:00Z#x", "f": "0", "p": 2}') + ".AAAAAAAAAAAAAAAAAAAAAA",
    "x" * 5000,
])
def test_a_forged_cursor_is_a_400_naming_the_cursor(client, headers, cursor):
    response = client.http.get(f"{RUNS}?cursor={cursor}", headers=headers)
    assert response.status_code == 400, response.body
    assert _field(response) == ["cursor"]


def test_an_issued_cursor_still_pages(client, headers):
    for n in range(3):
        client.http.post("/api/automations/manual/trigger", headers=headers,
                         body=json.dumps({"triggerData": {"n": n}}))
    first = client.http.get(f"{RUNS}?pageSize=1", headers=headers).json_body
    cursor = first["pagination"]["nextCursor"]
    second = client.http.get(f"{RUNS}?pageSize=1&cursor={cursor}", headers=headers)
    assert second.status_code == 200, second.body
    assert second.json_body["runs"][0]["id"] != first["runs"][0]["id"]


@pytest.fixture
def local_server(deps):
    """The local stack's HTTP server (Chalice's gateway, enveloped) on a free port."""
    server = create_server(app, Config(chalice_stage="prod", config_from_disk={}), "127.0.0.1",
                           0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server.server_address[1]}"
    server.shutdown()
    server.server.server_close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_local_gateway_answers_a_missing_authorization_in_the_envelope(local_server):
    status, headers, body = _get(local_server + RUNS)
    assert status == 401
    assert body == {"success": False, "code": "UNAUTHORIZED",
                    "message": "missing or invalid bearer token", "details": []}
    assert headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", [None, "Bearer whatever"])
def test_local_gateway_answers_an_unknown_path_404_in_the_envelope(local_server, authorization):
    status, _, body = _get(local_server + "/api/no/such/thing",
                           {"Authorization": authorization} if authorization else {})
    assert status == 404
    assert body["code"] == "NOT_FOUND" and body["success"] is False
    assert "Signature" not in json.dumps(body)


def test_local_gateway_logs_writes_and_errors_at_info_and_successful_reads_at_debug(
        local_server, headers, caplog):
    """A client polling a run (or the dashboard refreshing) does not fill the terminal: a
    successful read's line is DEBUG; a write or any error stays at INFO."""
    with caplog.at_level(logging.DEBUG, logger="runs.http"):
        _get(local_server + RUNS, headers)
        _get(local_server + RUNS + "/no-such-run", headers)
        request = urllib.request.Request(local_server + "/api/automations/manual/trigger",
                                         data=b'{"triggerData": {}}', method="POST",
                                         headers={**headers, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
    lines = {(record.levelname, record.getMessage().rsplit(" ", 2)[0])
             for record in caplog.records if record.name == "runs.http"}
    assert lines == {("DEBUG", f"GET {RUNS} 200"), ("INFO", f"GET {RUNS}/no-such-run 404"),
                     ("INFO", "POST /api/automations/manual/trigger 202")}


def test_local_gateway_sends_headers_and_body_in_one_write(local_server, headers, monkeypatch):
    """One send per answer (Chalice's handler makes two: headers, then body)."""
    import socketserver  # noqa: PLC0415

    writes = []
    original = socketserver._SocketWriter.write
    monkeypatch.setattr(socketserver._SocketWriter, "write",
                        lambda self, data: writes.append(bytes(data)) or original(self, data))
    status, answer_headers, body = _get(local_server + RUNS, headers)

    assert status == 200 and "runs" in body
    assert answer_headers["Content-Type"] == "application/json"
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.")
    assert json.loads(writes[0].split(b"\r\n\r\n", 1)[1]) == body
