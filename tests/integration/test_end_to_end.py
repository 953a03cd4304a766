"""The bundled automations on the local stack, over real HTTP, as a user runs them."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

TERMINAL = {"completed", "completed-with-errors", "failed", "timed-out", "exhausted",
            "cancelled"}


def _finished(stack, run_id: str):
    return stack.wait_for(f"/api/automations/runs/{run_id}",
                          lambda r: r.status == 200 and r.body.get("status") in TERMINAL)


def test_a_webhook_delivery_runs_to_completed(local_stack):
    delivery = local_stack.post("/api/automations/webhook-echo/webhook",
                                {"hello": "world"}, token=None)
    assert delivery.status == 202
    run = _finished(local_stack, delivery.body["id"]).body
    assert run["status"] == "completed"
    assert run["triggerType"] == "webhook"
    assert run["steps"][0]["output"]["body"] == {"hello": "world"}


def test_later_steps_use_earlier_outputs_and_totals_are_exact(local_stack):
    started = local_stack.post("/api/automations/order-pipeline/trigger", {"triggerData": {
        "orderId": "o-1", "items": [{"price": 7}, {"price": 8}]}})
    assert started.status == 202
    run = _finished(local_stack, started.body["id"]).body
    assert run["status"] == "completed"
    receipt = run["steps"][-1]["output"]
    assert receipt["orderId"] == "o-1" and receipt["total"] == 15
    listed = local_stack.wait_for(
        "/api/automations/runs?automationName=order-pipeline&status=completed",
        lambda r: r.body["pagination"]["total"] == 1)
    assert [r["id"] for r in listed.body["runs"]] == [started.body["id"]]


def test_a_failed_run_dispatches_its_handler_and_replays(local_stack):
    failed = local_stack.post("/api/automations/always-fails/trigger", {"triggerData": {}})
    assert _finished(local_stack, failed.body["id"]).body["status"] == "failed"
    handled = local_stack.wait_for(
        "/api/automations/runs?triggerType=automation-failure",
        lambda r: any(run["triggerData"]["run"]["id"] == failed.body["id"]
                      for run in r.body["runs"]))
    assert handled.status == 200
    replay = local_stack.post(f"/api/automations/runs/{failed.body['id']}/replay", {})
    assert replay.status == 202 and replay.body["replayOf"] == failed.body["id"]
    assert _finished(local_stack, replay.body["id"]).body["status"] == "failed"
