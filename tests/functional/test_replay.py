"""Replay with idempotent resume (SPEC 5) end to end on moto, with a sink counting calls."""
from __future__ import annotations

import pytest

from tests.support.apps import bearer, post
from tests.support.http_sink import Reply
from tests.support.sqs import run_terminal

AUTOMATIONS = """
automations:
  - name: abc
    trigger: { type: manual }
    actions:
      - name: A
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/a" }
      - name: B
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/b", body: { who: "{{trigger.data.who}}" } }
      - name: C
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/c", body: { fromA: "{{steps.A.body.v}}" } }
  - name: halted
    trigger: { type: manual }
    actions:
      - { name: first, type: data, operator: set, props: { value: 1 } }
      - name: gate
        type: filter
        operator: continue
        props: { condition: "trigger.data.go" }
      - name: after
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/after" }
"""


@pytest.fixture
def deps(wire):
    return wire(AUTOMATIONS)


def _run(client, deps, name, data):
    response = post(client, f"/api/automations/{name}/trigger", bearer(deps, "operator"),
                    {"triggerData": data})
    return run_terminal(deps, response.json_body["id"])


def _detail(client, deps, run_id):
    return client.http.get(f"/api/automations/runs/{run_id}",
                           headers=bearer(deps, "viewer")).json_body


def _replay(client, deps, run_id, body=None, role="operator", headers=None):
    return post(client, f"/api/automations/runs/{run_id}/replay",
                {**bearer(deps, role), **(headers or {})}, body or {})


@pytest.fixture
def failed_run(client, deps, http_sink):
    """A(ok, v=1) → B(fails, 404: not retried) → C not reached."""
    http_sink.enqueue("/a", Reply(body={"v": 1}), Reply(body={"v": 2}))
    http_sink.fail("/b", status=404)
    run = _run(client, deps, "abc", {"who": "ada"})
    assert run.status.value == "failed"
    return run


def test_replay_resumes_at_the_failed_step_and_reuses_earlier_outputs(
        client, deps, http_sink, failed_run):
    before = _detail(client, deps, failed_run.id)
    response = _replay(client, deps, failed_run.id)
    assert response.status_code == 202
    body = response.json_body
    assert body["replayOf"] == failed_run.id and body["runId"] == body["id"]
    assert body["status"] == "pending"
    assert body["resumeFrom"] == "B" and body["reusedSteps"] == ["A"]
    assert response.headers["Location"] == f"/api/automations/runs/{body['id']}"
    replayed = run_terminal(deps, body["id"])
    assert replayed.status.value == "completed"
    assert (http_sink.calls("/a"), http_sink.calls("/b"), http_sink.calls("/c")) == (1, 2, 1)
    assert http_sink.last("/c").json() == {"fromA": 1}  # A's original value, not a new call
    detail = _detail(client, deps, body["id"])
    a_step = detail["steps"][0]
    assert (a_step["status"], a_step["reusedFrom"]) == ("skipped", failed_run.id)
    assert a_step["output"] == before["steps"][0]["output"]
    after = _detail(client, deps, failed_run.id)
    assert {k: v for k, v in after.items() if k != "events"} == \
        {k: v for k, v in before.items() if k != "events"}
    assert after["events"][:len(before["events"])] == before["events"]
    assert after["events"][-1]["type"] == "replayed"
    assert after["events"][-1]["detail"] == {"replayId": body["id"]}
    created = detail["events"][0]
    assert (created["type"], created["detail"]["replayOf"]) == ("created", failed_run.id)
    assert created["actor"].startswith("token:")
    listed = client.http.get(f"/api/automations/runs?replayOf={failed_run.id}",
                             headers=bearer(deps, "viewer")).json_body
    assert [r["id"] for r in listed["runs"]] == [body["id"]]


def test_from_step_repeats_completed_steps(client, deps, http_sink, failed_run):
    response = _replay(client, deps, failed_run.id, {"fromStep": "A"})
    assert response.json_body["resumeFrom"] == "A" and response.json_body["reusedSteps"] == []
    run_terminal(deps, response.json_body["id"])
    assert http_sink.calls("/a") == 2
    assert http_sink.last("/c").json() == {"fromA": 2}


def test_unknown_or_late_from_step_is_a_400(client, deps, failed_run):
    unknown = _replay(client, deps, failed_run.id, {"fromStep": "Z"})
    assert unknown.status_code == 400
    assert unknown.json_body["details"][0]["field"] == "fromStep"
    late = _replay(client, deps, failed_run.id, {"fromStep": "C"})
    assert late.status_code == 400


def test_replay_of_a_run_in_progress_is_a_409(client, deps):
    response = post(client, "/api/automations/abc/trigger", bearer(deps, "operator"),
                    {"triggerData": {}})
    conflict = _replay(client, deps, response.json_body["id"])
    assert conflict.status_code == 409
    assert conflict.json_body["status"] == "pending"


def test_trigger_data_override_needs_admin(client, deps, http_sink, failed_run):
    assert _replay(client, deps, failed_run.id, {"triggerData": {"who": "eve"}}).status_code \
        == 403
    response = _replay(client, deps, failed_run.id, {"triggerData": {"who": "bob"}},
                       role="admin")
    assert response.status_code == 202
    run_terminal(deps, response.json_body["id"])
    assert http_sink.last("/b").json() == {"who": "bob"}
    assert _detail(client, deps, response.json_body["id"])["triggerData"] == {"who": "bob"}


def test_same_idempotency_key_creates_one_replay(client, deps, failed_run):
    first = _replay(client, deps, failed_run.id, headers={"Idempotency-Key": "r1"})
    again = _replay(client, deps, failed_run.id, headers={"Idempotency-Key": "r1"})
    assert first.json_body["id"] == again.json_body["id"]
    events = _detail(client, deps, failed_run.id)["events"]
    assert [e["type"] for e in events].count("replayed") == 1


def test_completed_run_replays_only_with_from_step(client, deps, http_sink):
    http_sink.respond("/a", body={"v": 5})
    run = _run(client, deps, "abc", {"who": "x"})
    assert run.status.value == "completed"
    conflict = _replay(client, deps, run.id)
    assert conflict.status_code == 409 and conflict.json_body["status"] == "completed"
    assert _replay(client, deps, run.id, {"fromStep": "C"}).status_code == 202


def test_replay_never_walks_past_a_filter(client, deps, http_sink):
    run = _run(client, deps, "halted", {"go": False})
    assert run.status.value == "completed"
    assert _replay(client, deps, run.id).status_code == 409
    assert _replay(client, deps, run.id, {"fromStep": "after"}).status_code == 400
    response = _replay(client, deps, run.id, {"fromStep": "gate"})
    assert response.json_body["reusedSteps"] == ["first"]
    assert run_terminal(deps, response.json_body["id"]).status.value == "completed"
    assert http_sink.calls("/after") == 0  # the filter ran again and halted again


def test_replay_of_a_replay_links_to_its_own_original(client, deps, http_sink, failed_run):
    http_sink.fail("/b", status=404)
    first = _replay(client, deps, failed_run.id).json_body["id"]
    assert run_terminal(deps, first).status.value == "failed"
    second = _replay(client, deps, first).json_body
    assert second["replayOf"] == first
    run_terminal(deps, second["id"])
    steps = _detail(client, deps, second["id"])["steps"]
    assert steps[0]["reusedFrom"] == failed_run.id  # where A's output was produced
    assert http_sink.calls("/a") == 1
