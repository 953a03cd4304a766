"""Triggers and the step executor end to end: chalice.test.Client routes, the real step
handler fed from the moto step queue, and a local HTTP sink counting calls."""
from __future__ import annotations

import threading
import time

import pytest

from tests.support.apps import bearer, post
from tests.support.drive import deliver_one
from tests.support.sqs import run_terminal

AUTOMATIONS = """
automations:
  - name: three-steps
    trigger: { type: manual }
    actions:
      - name: a
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/a" }
      - name: b
        type: data
        operator: set
        props: { value: { doubled: "{{steps.a.body.id}}" } }
      - name: c
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/c", body: { id: "{{steps.a.body.id}}" } }
  - name: gated
    trigger: { type: manual }
    actions:
      - name: check
        type: filter
        operator: continue
        props: { condition: "trigger.data.go" }
      - name: call
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/gated" }
      - name: after
        type: data
        operator: set
        props: { value: 1 }
  - name: switched-off
    enabled: false
    trigger: { type: manual }
    actions:
      - { name: x, type: data, operator: set, props: { value: 1 } }
"""


@pytest.fixture
def deps(wire, http_sink):
    http_sink.respond("/a", body={"id": 41})
    return wire(AUTOMATIONS)


def _trigger(client, deps, name, data=None, headers=None):
    response = post(client, f"/api/automations/{name}/trigger", {**bearer(deps, "operator"),
                    **(headers or {})}, {"triggerData": data or {}})
    assert response.status_code == 202, response.body
    return response


def _detail(client, deps, run_id):
    response = client.http.get(f"/api/automations/runs/{run_id}", headers=bearer(deps, "viewer"))
    assert response.status_code == 200
    return response.json_body


def test_three_step_run_completes_with_real_steps_and_typed_templates(client, deps, http_sink):
    response = _trigger(client, deps, "three-steps")
    run_id = response.json_body["id"]
    assert response.headers["Location"] == f"/api/automations/runs/{run_id}"
    assert response.json_body["status"] == "pending"
    assert run_terminal(deps, run_id).status.value == "completed"
    detail = _detail(client, deps, run_id)
    assert [(s["name"], s["type"], s["operator"], s["status"]) for s in detail["steps"]] == [
        ("a", "http", "get", "completed"), ("b", "data", "set", "completed"),
        ("c", "http", "post", "completed")]
    for step in detail["steps"]:
        assert isinstance(step["durationMs"], int) and step["startedAt"] <= step["completedAt"]
    assert detail["steps"][1]["output"] == {"doubled": 41}
    assert http_sink.last("/c").json() == {"id": 41}  # the number kept its type
    assert http_sink.last("/c").header("Idempotency-Key") == f"{run_id}:c"
    assert detail["startedAt"] and isinstance(detail["durationMs"], int)
    assert [e["to"] for e in detail["events"] if e["type"] == "transition"] == [
        "running", "completed"]


def test_filter_halt_skips_later_steps_and_completes(client, deps, http_sink):
    run_id = _trigger(client, deps, "gated", {"go": False}).json_body["id"]
    assert run_terminal(deps, run_id).status.value == "completed"
    steps = _detail(client, deps, run_id)["steps"]
    assert [s["status"] for s in steps] == ["completed", "skipped", "skipped"]
    assert http_sink.calls("/gated") == 0


def test_every_message_delivered_twice_executes_each_step_once(client, deps, http_sink):
    run_id = _trigger(client, deps, "three-steps").json_body["id"]
    assert run_terminal(deps, run_id, times=2).status.value == "completed"
    assert http_sink.calls("/a") == 1
    assert http_sink.calls("/c") == 1


def test_idempotency_key_returns_the_same_run(client, deps):
    first = _trigger(client, deps, "three-steps", headers={"Idempotency-Key": "k-1"})
    again = _trigger(client, deps, "three-steps", headers={"Idempotency-Key": "k-1"})
    other = _trigger(client, deps, "three-steps", headers={"Idempotency-Key": "k-2"})
    assert first.json_body["id"] == again.json_body["id"] != other.json_body["id"]


def test_disabled_and_unknown_automations_never_start(client, deps):
    headers = bearer(deps, "operator")
    disabled = post(client, "/api/automations/switched-off/trigger", headers, {})
    assert disabled.status_code == 409
    assert disabled.json_body["code"] == "AUTOMATION_DISABLED"
    unknown = post(client, "/api/automations/nope/trigger", headers, {})
    assert unknown.status_code == 404


def test_trigger_needs_the_operator_role_and_valid_body(client, deps):
    assert post(client, "/api/automations/three-steps/trigger", bearer(deps, "viewer"),
                {}).status_code == 403
    bad = post(client, "/api/automations/three-steps/trigger", bearer(deps, "operator"),
               {"triggerData": {}, "bogus": 1})
    assert bad.status_code == 400
    assert "bogus" in str(bad.json_body["details"])


def test_automations_are_listed_with_their_trigger_types(client, deps):
    body = client.http.get("/api/automations", headers=bearer(deps, "viewer")).json_body
    listed = {a["name"]: a for a in body["automations"]}
    assert listed["three-steps"]["triggerType"] == "manual"
    assert listed["switched-off"]["enabled"] is False


def test_non_finite_numbers_in_a_body_are_a_400(client, deps):
    response = client.http.post("/api/automations/three-steps/trigger",
                                headers=bearer(deps, "operator"),
                                body='{"triggerData": {"x": 1e400}}')
    assert response.status_code == 400
    assert response.json_body["code"] == "VALIDATION_ERROR"


def test_a_running_run_shows_finished_running_and_pending_steps(client, deps, http_sink):
    http_sink.delay("/gated", 1.5)  # step `call` is in flight while we look
    run_id = _trigger(client, deps, "gated", {"go": True}).json_body["id"]
    worker = threading.Thread(target=deliver_one, args=(deps,))
    worker.start()
    deadline = time.monotonic() + 10
    while http_sink.calls("/gated") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    detail = _detail(client, deps, run_id)
    worker.join()
    assert detail["status"] == "running"
    assert [s["status"] for s in detail["steps"]] == ["completed", "running", "pending"]
    assert detail["steps"][0]["output"] == {"passed": True}
    assert detail["steps"][1]["startedAt"] and detail["steps"][1]["completedAt"] is None
    assert _detail(client, deps, run_id)["status"] == "completed"
