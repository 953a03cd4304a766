"""Webhooks against replay and probing: a signed body is remembered for 24 h, the timestamped
scheme refuses stale signatures, and /trigger starts only manual automations (admins: any)."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.services.webhook import signature_of
from tests.support.apps import bearer, post

AUTOMATIONS = """
automations:
  - name: signed
    trigger: { type: webhook, secret: "{{secrets.HOOK_KEY}}",
               deduplicationKey: "{{trigger.data.headers.x-delivery}}" }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
  - name: stamped
    trigger: { type: webhook, secret: "{{secrets.HOOK_KEY}}", signature: timestamped }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
  - name: nightly
    trigger: { type: cron, expression: "0 3 * * *" }
    actions:
      - { name: keep, type: data, operator: set, props: { value: 1 } }
  - name: by-hand
    trigger: { type: manual }
    actions:
      - { name: keep, type: data, operator: set, props: { value: 1 } }
"""
KEY = "hook-signing-key-2"
HOOKS = "/api/automations/{}/webhook"


@pytest.fixture
def deps(wire, monkeypatch):
    monkeypatch.setenv("RUNS_SECRET_HOOK_KEY", KEY)
    return wire(AUTOMATIONS)


def _runs(deps, name: str) -> int:
    from chalicelib.domain.model import RunFilter

    return len(deps.repo.list_runs(RunFilter(automation_name=name), limit=50).runs)


def test_a_replayed_signed_body_creates_one_run_whatever_its_dedup_header(client, deps):
    raw = json.dumps({"order": 42}).encode()
    signed = {"Content-Type": "application/json", "X-Signature-256": signature_of(KEY, raw)}
    answers = [client.http.post(HOOKS.format("signed"), body=raw,
                                headers={**signed, "X-Delivery": f"d-{n}"}) for n in range(3)]
    assert [a.status_code for a in answers] == [202, 200, 200]
    first = answers[0].json_body["id"]
    assert [a.json_body for a in answers[1:]] == [{"id": first, "deduplicated": True}] * 2
    assert _runs(deps, "signed") == 1
    other = json.dumps({"order": 43}).encode()  # a new body, newly signed, is a new delivery
    fresh = client.http.post(HOOKS.format("signed"), body=other, headers={
        **signed, "X-Signature-256": signature_of(KEY, other), "X-Delivery": "d-9"})
    assert fresh.status_code == 202 and _runs(deps, "signed") == 2


def _stamped(client, raw: bytes, at: int, signed_at: int | None = None):
    signature = signature_of(KEY, raw, str(signed_at if signed_at is not None else at))
    return client.http.post(HOOKS.format("stamped"), body=raw, headers={
        "Content-Type": "application/json", "X-Signature-256": signature,
        "X-Signature-Timestamp": str(at)})


def test_timestamped_signatures_within_five_minutes_only(client, deps):
    raw = b'{"event": "paid"}'
    now = int(time.time())
    assert _stamped(client, raw, now - 60).status_code == 202
    stale = _stamped(client, raw, now - 400)
    assert stale.status_code == 401
    assert _stamped(client, raw, now + 400).status_code == 401  # from the future
    assert _stamped(client, raw, now, signed_at=now - 1).status_code == 401  # not what was signed
    # A plain body signature is not accepted by a timestamped automation.
    plain = client.http.post(HOOKS.format("stamped"), body=raw, headers={
        "X-Signature-256": signature_of(KEY, raw), "X-Signature-Timestamp": str(now)})
    assert plain.status_code == 401
    assert _stamped(client, raw, now - 60).status_code == 200  # the same delivery again
    assert _runs(deps, "stamped") == 1


def test_operators_trigger_manual_automations_only(client, deps):
    operator = bearer(deps, "operator")
    refused = post(client, "/api/automations/nightly/trigger", operator, {})
    assert refused.status_code == 403 and refused.json_body["code"] == "FORBIDDEN"
    assert post(client, "/api/automations/signed/trigger", operator, {}).status_code == 403
    assert post(client, "/api/automations/by-hand/trigger", operator, {}).status_code == 202


def test_admins_may_start_any_automation_on_the_record(client, deps):
    started = post(client, "/api/automations/signed/trigger", bearer(deps, "admin"),
                   {"triggerData": {"body": {"order": 1}}})
    assert started.status_code == 202, started.body
    run = deps.repo.get_run(started.json_body["id"])
    assert run.trigger_type == "manual"
    assert run.events[0].actor.endswith("(admin, webhook automation)")
