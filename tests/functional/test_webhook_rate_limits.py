"""Webhook rate limits over the API (moto): a burst is accepted, the next delivery is a 429 with
Retry-After that starts nothing, tokens come back on the injected clock, each automation has
its own bucket, forged deliveries spend nothing and a signed replay still deduplicates."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain.model import RunFilter
from chalicelib.services.webhook import signature_of
from tests.support.stack import Clock

AUTOMATIONS = """
automations:
  - name: limited
    trigger: { type: webhook, rateLimit: { perMinute: 6, burst: 3 } }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
  - name: neighbour
    trigger: { type: webhook, rateLimit: { perMinute: 6, burst: 3 } }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
  - name: signed
    trigger: { type: webhook, secret: "{{secrets.HOOK_KEY}}", rateLimit: { perMinute: 6, burst: 2 } }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
"""
KEY = "rate-limit-signing-key"
HOOKS = "/api/automations/{}/webhook"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(wire, monkeypatch, clock):
    monkeypatch.setenv("RUNS_SECRET_HOOK_KEY", KEY)
    return wire(AUTOMATIONS, clock=clock)


def deliver(client, name: str, n: int = 0, headers: dict[str, str] | None = None,
            raw: bytes | None = None):
    raw = raw if raw is not None else json.dumps({"n": n}).encode()
    return client.http.post(HOOKS.format(name), body=raw,
                            headers={"Content-Type": "application/json", **(headers or {})})


def runs_of(deps, name: str) -> int:
    return len(deps.repo.list_runs(RunFilter(automation_name=name), limit=50).runs)


def test_a_burst_is_accepted_and_the_next_delivery_is_a_429_that_starts_nothing(client, deps):
    accepted = [deliver(client, "limited", n) for n in range(3)]
    assert [a.status_code for a in accepted] == [202, 202, 202]

    refused = deliver(client, "limited", 3)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "10"
    body = refused.json_body
    assert body["code"] == "RATE_LIMITED" and body["success"] is False
    assert body["limit"] == {"perMinute": 6, "burst": 3} and body["retryAfter"] == 10
    assert "limited" in body["message"] and "6 webhook runs a minute" in body["message"]
    assert runs_of(deps, "limited") == 3


def test_tokens_come_back_at_the_rate_on_the_injected_clock(client, deps, clock):
    for n in range(3):
        deliver(client, "limited", n)

    clock.advance(seconds=4)
    waiting = deliver(client, "limited", 10)
    assert (waiting.status_code, waiting.headers["Retry-After"]) == (429, "6")
    clock.advance(seconds=6)
    assert deliver(client, "limited", 11).status_code == 202
    assert deliver(client, "limited", 12).status_code == 429
    clock.advance(seconds=60)  # a long pause refills the burst, not more
    assert [deliver(client, "limited", 20 + n).status_code for n in range(4)] == [
        202, 202, 202, 429]
    assert runs_of(deps, "limited") == 7


def test_each_automation_has_its_own_bucket(client, deps):
    for n in range(4):
        deliver(client, "limited", n)

    assert [deliver(client, "neighbour", n).status_code for n in range(3)] == [202] * 3
    assert runs_of(deps, "neighbour") == 3 and runs_of(deps, "limited") == 3


def test_forged_deliveries_spend_no_tokens_and_a_signed_replay_still_deduplicates(
        client, deps):
    raw = b'{"order": 7}'
    for _ in range(5):  # anyone can post; only a verified delivery takes a token
        assert deliver(client, "signed", raw=raw,
                       headers={"X-Signature-256": "sha256=" + "0" * 64}).status_code == 401
    signed = {"X-Signature-256": signature_of(KEY, raw)}

    first = deliver(client, "signed", raw=raw, headers=signed)
    replay = deliver(client, "signed", raw=raw, headers=signed)

    assert first.status_code == 202
    assert (replay.status_code, replay.json_body) == (
        200, {"id": first.json_body["id"], "deduplicated": True})
    # Replays count as deliveries: over the limit they are refused, and still start nothing.
    assert deliver(client, "signed", raw=raw, headers=signed).status_code == 429
    assert runs_of(deps, "signed") == 1
