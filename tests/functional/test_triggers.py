"""Webhook (signature, deduplication) and cron (once per minute) triggers on moto."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from chalicelib.services.cron import fire_due
from chalicelib.services.webhook import signature_of
from tests.support.apps import bearer
from tests.support.sqs import run_terminal

AUTOMATIONS = """
automations:
  - name: signed
    trigger: { type: webhook, secret: "{{secrets.HOOK_KEY}}" }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
  - name: deduped
    trigger: { type: webhook, deduplicationKey: "{{trigger.data.body.eventId}}",
               deduplicationWindow: 600 }
    actions:
      - name: maybeFail
        type: filter
        operator: continue
        props: { condition: "trigger.data.body.ok" }
      - { name: boom, type: flow, operator: fail, props: { message: "failed on purpose" } }
  - name: unsigned-form
    trigger: { type: webhook }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
  - name: every-minute
    trigger: { type: cron, expression: "* * * * *" }
    actions:
      - { name: beat, type: data, operator: set, props: { value: "{{trigger.data.scheduledAt}}" } }
  - name: cron-off
    enabled: false
    trigger: { type: cron, expression: "* * * * *" }
    actions:
      - { name: beat, type: data, operator: set, props: { value: 1 } }
"""
KEY = "hook-signing-key-1"


@pytest.fixture
def deps(wire, monkeypatch):
    monkeypatch.setenv("RUNS_SECRET_HOOK_KEY", KEY)
    return wire(AUTOMATIONS)


def _deliver(client, name, body, headers=None):
    raw = json.dumps(body)
    return client.http.post(f"/api/automations/{name}/webhook", body=raw,
                            headers={"Content-Type": "application/json", **(headers or {})})


def test_signed_webhook_accepts_a_good_signature_only(client, deps):
    body = {"hello": "world", "template": "{{secrets.HOOK_KEY}}"}
    raw = json.dumps(body).encode()
    assert _deliver(client, "signed", body).status_code == 401
    assert _deliver(client, "signed", body, {"X-Signature-256": "sha256=00"}).status_code == 401
    ok = _deliver(client, "signed", body, {"X-Signature-256": signature_of(KEY, raw)})
    assert ok.status_code == 202
    run = run_terminal(deps, ok.json_body["id"])
    assert run.status.value == "completed"
    _, steps = deps.repo.get_detail(run.id)
    assert steps[0].output == body  # payload text is data: the template was not evaluated
    assert run.trigger_data["headers"]["x-signature-256"] == "[redacted]"


def test_duplicate_delivery_is_deduplicated_unless_the_original_failed(client, deps):
    first = _deliver(client, "deduped", {"eventId": "e1", "ok": True})
    assert first.status_code == 202
    assert run_terminal(deps, first.json_body["id"]).status.value == "failed"
    retried = _deliver(client, "deduped", {"eventId": "e1", "ok": False})
    assert retried.status_code == 202  # the failed original does not block a retry
    assert retried.json_body["id"] != first.json_body["id"]
    duplicate = _deliver(client, "deduped", {"eventId": "e1", "ok": False})
    assert duplicate.status_code == 200
    assert duplicate.json_body == {"id": retried.json_body["id"], "deduplicated": True}


def test_unknown_webhook_answers_as_a_bad_signature_and_oversized_body_is_413(client, deps):
    unknown, bad = _deliver(client, "nope", {}), _deliver(client, "signed", {})
    assert (unknown.status_code, unknown.json_body) == (bad.status_code, bad.json_body) == (
        401, {"success": False, "code": "UNAUTHORIZED",
              "message": "unknown webhook or bad signature", "details": []})
    cron = _deliver(client, "every-minute", {})  # no webhook route for other trigger types
    assert (cron.status_code, cron.json_body) == (401, bad.json_body)
    big = {"blob": "x" * (300 * 1024)}
    raw = json.dumps(big).encode()
    response = _deliver(client, "signed", big, {"X-Signature-256": signature_of(KEY, raw)})
    assert response.status_code == 413


def test_cron_fires_once_per_minute_even_with_two_schedulers(deps):
    minute = datetime(2026, 5, 1, 10, 30, 12, tzinfo=timezone.utc)
    first = fire_due(deps, minute)
    second = fire_due(deps, minute.replace(second=40))
    assert len(first) == 1 and second == []
    run = deps.repo.get_run(first[0])
    assert run.automation_name == "every-minute"
    assert run.trigger_data == {"scheduledAt": "2026-05-01T10:30:00.000Z"}
    assert len(fire_due(deps, minute.replace(minute=31))) == 1


def test_manual_trigger_admin_can_list_a_cron_next_run(client, deps):
    body = client.http.get("/api/automations", headers=bearer(deps, "viewer")).json_body
    listed = {a["name"]: a for a in body["automations"]}
    assert listed["every-minute"]["nextRunAt"]
    assert listed["cron-off"]["nextRunAt"] is None


def test_a_form_encoded_webhook_delivery_is_accepted_as_text(client, deps):
    response = client.http.post("/api/automations/unsigned-form/webhook", body="a=1&b=two",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 202, response.body
    run = run_terminal(deps, response.json_body["id"])
    assert run.trigger_data["body"] == "a=1&b=two"
    assert run.status.value == "completed"


def test_cancel_accepts_a_request_without_a_json_content_type(client, deps):
    response = client.http.post("/api/automations/runs/nope/cancel",
                                headers={**bearer(deps, "operator"), "Content-Type": "text/plain"})
    assert response.status_code == 404
    assert response.json_body["code"] == "NOT_FOUND"
