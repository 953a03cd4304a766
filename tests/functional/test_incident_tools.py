"""Incident tools over HTTP on moto (issue 17): retry-now, the waiting state in lists and
details, `waiting=` and `triggerData.<key>=` list filters, with their 4xx answers."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.support.apps import bearer, post
from tests.support.runs import detail, drain, trigger

RUNS = "/api/automations/runs"
AUTOMATIONS = """
automations:
  - name: charge
    trigger: { type: manual }
    index: [orderId]
    actions:
      - name: pay
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/pay" }
        retry: { maxAttempts: 3, delayMs: 60000 }
      - { name: after, type: data, operator: set, props: { value: 1 } }
  - name: pause
    trigger: { type: manual }
    actions:
      - { name: hold, type: delay, operator: wait, props: { ms: 600000 } }
"""


@pytest.fixture
def deps(wire, http_sink):
    http_sink.respond("/pay", status=503, body={"error": "down"})
    return wire(AUTOMATIONS)


def _list(client, deps, **params):
    response = client.http.get(f"{RUNS}?{urlencode(params)}", headers=bearer(deps, "viewer"))
    return response


def _retry_now(client, deps, run_id, step, role="operator"):
    return post(client, f"{RUNS}/{run_id}/steps/{step}/retry-now", bearer(deps, role))


def test_a_waiting_run_is_listed_and_woken_over_http(client, deps, http_sink):
    run_id = trigger(client, deps, "charge", {"orderId": "A-1"})
    drain(deps)  # the first attempt fails and parks for a minute
    assert http_sink.calls("/pay") == 1

    listed = _list(client, deps, waiting="retry").json_body["runs"]
    assert [run["id"] for run in listed] == [run_id]
    assert listed[0]["status"] == "running"
    assert listed[0]["waiting"]["step"] == "pay" and listed[0]["waiting"]["attempt"] == 2
    assert listed[0]["waitingUntil"] == listed[0]["waiting"]["waitingUntil"]
    assert _list(client, deps, waiting="delay").json_body["runs"] == []

    assert _retry_now(client, deps, run_id, "pay", role="viewer").status_code == 403
    http_sink.respond("/pay", status=200, body={"ok": True})
    response = _retry_now(client, deps, run_id, "pay")
    assert response.status_code == 202, response.body
    assert response.json_body["attempt"] == 2 and not response.json_body["repeated"]
    assert _retry_now(client, deps, run_id, "pay").json_body["repeated"] is True
    drain(deps)

    run = detail(client, deps, run_id)
    assert run["status"] == "completed" and run["waiting"] is None
    assert http_sink.calls("/pay") == 2
    assert any(e["type"] == "retry-now" and e["detail"]["step"] == "pay" for e in run["events"])
    conflict = _retry_now(client, deps, run_id, "pay")
    assert conflict.status_code == 409
    assert conflict.json_body["code"] == "STEP_NOT_WAITING"
    assert conflict.json_body["status"] == "completed"
    assert _retry_now(client, deps, run_id, "nope").status_code == 404


def test_waking_a_delay_is_for_admins(client, deps):
    run_id = trigger(client, deps, "pause")
    drain(deps)
    assert _list(client, deps, waiting="delay").json_body["runs"][0]["id"] == run_id
    refused = _retry_now(client, deps, run_id, "hold")
    assert refused.status_code == 403
    assert _retry_now(client, deps, run_id, "hold", role="admin").status_code == 202
    drain(deps)
    assert detail(client, deps, run_id)["status"] == "completed"


def test_search_by_a_declared_key(client, deps):
    first = trigger(client, deps, "charge", {"orderId": "A-7"})
    trigger(client, deps, "charge", {"orderId": "A-8"})
    found = _list(client, deps, **{"triggerData.orderId": "A-7"}).json_body
    assert [run["id"] for run in found["runs"]] == [first]
    assert found["pagination"]["total"] == 1
    both = _list(client, deps, **{"triggerData[orderId]": "A-7", "automationName": "charge"})
    assert [run["id"] for run in both.json_body["runs"]] == [first]


@pytest.mark.parametrize("params, field", [
    ({"waiting": "soon"}, "waiting"),
    ({"triggerData.order.id": "1"}, "triggerData"),
    ({"triggerData.a": "1", "triggerData.b": "2"}, "triggerData"),
    ({"triggerData.a": "x" * 1025}, "triggerData"),
])
def test_bad_list_filters_are_400s_naming_the_field(client, deps, params, field):
    response = _list(client, deps, **params)
    assert response.status_code == 400
    assert field in {detail["field"] for detail in response.json_body["details"]}
