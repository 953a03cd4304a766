"""Cancel end to end: the API's cancel route against waiting and executing runs, the real
step handler fed from the moto step queue, and a local HTTP sink counting calls."""
from __future__ import annotations

import threading
import time

import pytest
from chalice.test import Client

from app import app
from tests.support.drive import Api, drain_queue

AUTOMATIONS = """
automations:
  - name: queued
    trigger: { type: manual }
    concurrency: { limit: 1 }
    actions:
      - name: call
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/queued/{{trigger.data.n}}" }
  - name: three-steps
    trigger: { type: manual }
    actions:
      - { name: slow, type: http, operator: post, props: { url: "{{secrets.SINK}}/slow" } }
      - { name: second, type: http, operator: post, props: { url: "{{secrets.SINK}}/second" } }
      - { name: third, type: http, operator: post, props: { url: "{{secrets.SINK}}/third" } }
  - name: on-failure
    trigger:
      type: automation-failure
      statuses: [failed, exhausted, timed-out, completed-with-errors]
    actions:
      - { name: alert, type: http, operator: post, props: { url: "{{secrets.SINK}}/alert" } }
"""


@pytest.fixture
def deps(wire):
    return wire(AUTOMATIONS)


@pytest.fixture
def api(deps):
    with Client(app) as client:
        yield Api(client, deps)


def test_cancel_of_a_waiting_run_never_executes_it_and_frees_no_slot(api, deps, http_sink):
    holder, waiting, next_in_line = (api.trigger("queued", {"n": n}) for n in range(3))
    assert deps.slots.holders("queued") == {holder}

    response = api.cancel(waiting)

    assert response.status_code == 200, response.body
    assert response.json_body["status"] == "cancelled"
    assert deps.slots.holders("queued") == {holder}  # it held nothing, so nothing moved
    assert api.status(next_in_line) == "pending"
    drain_queue(deps)
    assert [api.status(r) for r in (holder, waiting, next_in_line)] == [
        "completed", "cancelled", "completed"]
    assert [http_sink.calls(f"/queued/{n}") for n in range(3)] == [1, 0, 1]
    detail = api.detail(waiting)
    assert detail["startedAt"] is None and detail["cancelledAt"] is not None
    assert [step["status"] for step in detail["steps"]] == ["skipped"]
    assert api.detail(next_in_line)["startedAt"] >= api.detail(holder)["completedAt"]
    assert deps.slots.holders("queued") == set()


def test_cancel_of_an_admitted_pending_run_hands_its_slot_to_the_next(api, deps, http_sink):
    admitted, waiting = (api.trigger("queued", {"n": n}) for n in range(2))
    assert deps.slots.holders("queued") == {admitted}

    assert api.cancel(admitted).status_code == 200

    assert deps.slots.holders("queued") == {waiting}
    drain_queue(deps)  # the cancelled run's own step message arrives too, and does nothing
    assert api.status(admitted) == "cancelled"
    assert api.status(waiting) == "completed"
    assert [http_sink.calls(f"/queued/{n}") for n in range(2)] == [0, 1]
    assert deps.slots.holders("queued") == set()


def test_cancel_during_a_slow_first_step_records_it_and_skips_the_rest(api, deps, http_sink):
    http_sink.delay("/slow", 1.5)
    run_id = api.trigger("three-steps")
    delivered: list[dict] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            delivered.extend(drain_queue(deps))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 10
    while http_sink.calls("/slow") == 0:  # step 1 is executing on the worker
        assert time.monotonic() < deadline and thread.is_alive(), "step 1 never started"
        time.sleep(0.01)

    response = api.cancel(run_id)
    thread.join()

    assert not errors, errors
    assert response.status_code == 200, response.body
    delivered += drain_queue(deps)
    detail = api.detail(run_id)
    assert detail["status"] == "cancelled"
    assert [s["status"] for s in detail["steps"]] == ["completed", "skipped", "skipped"]
    assert detail["steps"][0]["output"]["body"]["path"] == "/slow"  # its real result
    assert detail["steps"][0]["completedAt"] > detail["cancelledAt"]
    assert (http_sink.calls("/second"), http_sink.calls("/third")) == (0, 0)
    assert [e["to"] for e in detail["events"] if e["to"] != "pending"] == [
        "running", "cancelled"]
    assert not [body for body in delivered if body.get("kind") == "failure"]
    assert api.listed(automationName="on-failure") == []
    assert http_sink.calls("/alert") == 0


def test_cancel_of_an_ended_run_is_rejected_and_changes_nothing(api, deps):
    run_id = api.trigger("queued", {"n": 0})
    drain_queue(deps)

    response = api.cancel(run_id)

    assert response.status_code == 409
    assert response.json_body["code"] == "INVALID_TRANSITION"
    assert api.detail(run_id)["status"] == "completed"
    second = api.trigger("queued", {"n": 1})
    assert api.cancel(second).status_code == 200
    assert api.cancel(second).status_code == 409  # cancelled is terminal too
