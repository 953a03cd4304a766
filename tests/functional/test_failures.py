"""How runs fail, end to end on moto: action and run timeouts, continueOnError, failure
handlers (disabled, loop guard, watched statuses), the step-DLQ consumer, the sweeper,
cancel, and the EMF metrics each outcome prints."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app import app
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.domain.clock import utcnow
from chalicelib.domain.statuses import RunStatus
from chalicelib.local.pollers import lambda_context, scheduled_event, sqs_event
from tests.support.apps import bearer, post
from tests.support.runs import detail, drain, emf_metrics, metric_names, runs_of, trigger
from tests.support.sqs import deliver, run_terminal

AUTOMATIONS = """
automations:
  - name: slow-action
    trigger: { type: manual }
    actions:
      - name: call
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/slow" }
        timeout: 1000
  - name: slow-run
    trigger: { type: manual }
    timeout: 1000
    actions:
      - { name: first, type: data, operator: set, props: { value: { n: 1 } } }
      - { name: call, type: http, operator: get, props: { url: "{{secrets.SINK}}/slow" } }
      - { name: last, type: data, operator: set, props: { value: 2 } }
  - name: vanishing-run
    trigger: { type: manual }
    timeout: 60000
    actions:
      - { name: first, type: data, operator: set, props: { value: { n: 1 } } }
      - { name: call, type: http, operator: get, props: { url: "{{secrets.SINK}}/fast" } }
      - { name: last, type: data, operator: set, props: { value: 2 } }
  - name: tolerant
    trigger: { type: manual }
    actions:
      - name: first
        type: flow
        operator: fail
        props: { message: "tolerated" }
        continueOnError: true
      - { name: second, type: http, operator: post, props: { url: "{{secrets.SINK}}/after" } }
      - { name: third, type: data, operator: set, props: { value: "{{steps.second.status}}" } }
  - name: broken
    trigger: { type: manual }
    actions:
      - { name: boom, type: flow, operator: fail, props: { message: "broken on purpose" } }
  - name: limited
    trigger: { type: manual }
    concurrency: { limit: 1 }
    actions:
      - { name: only, type: data, operator: set, props: { value: 1 } }
  - name: watch-all
    trigger: { type: automation-failure }
    actions:
      - { name: relay, type: flow, operator: fail, props: { message: "the handler fails too" } }
  - name: watch-exhausted
    trigger: { type: automation-failure, statuses: [exhausted] }
    actions:
      - { name: note, type: data, operator: set, props: { value: "{{trigger.data.run.id}}" } }
  - name: watch-slow
    trigger: { type: automation-failure, statuses: [timed-out, completed-with-errors] }
    actions:
      - { name: note, type: data, operator: set, props: { value: "{{trigger.data.run.id}}" } }
  - name: watch-off
    enabled: false
    trigger: { type: automation-failure, statuses: [failed, timed-out, exhausted] }
    actions:
      - { name: note, type: data, operator: set, props: { value: 1 } }
"""
HANDLERS = ("watch-all", "watch-exhausted", "watch-slow", "watch-off")


class Vanished(BaseException):
    """The executor's Lambda was killed mid-step (not an exception the worker catches)."""


@pytest.fixture
def deps(wire):
    return wire(AUTOMATIONS)


def _handler_runs(deps) -> dict[str, list]:
    drain(deps)
    return {name: runs_of(deps, name) for name in HANDLERS}


def _metrics(capsys, automation: str) -> set[str]:
    return metric_names(capsys.readouterr().out, automation)


def test_action_timeout_ends_the_run_timed_out(client, deps, http_sink, capsys):
    http_sink.delay("/slow", 2.5)
    run_id = trigger(client, deps, "slow-action")
    assert run_terminal(deps, run_id).status.value == "timed-out"
    run = detail(client, deps, run_id)
    (call,) = run["steps"]
    assert call["status"] == "failed" and call["error"]["timedOut"] is True
    assert call["error"]["type"] == "Timeout" and "timed out" in call["error"]["message"]
    assert 1000 <= call["durationMs"] < 2500
    assert run["error"]["type"] == "Timeout" and run["error"]["step"] == "call"
    assert {"RunsStarted", "QueueWaitMs", "StepDurationMs", "RunsTimedOut",
            "RunDurationMs"} <= _metrics(capsys, "slow-action")


def test_run_timeout_keeps_finished_steps_fails_the_in_flight_one_and_skips_the_rest(
        client, deps, http_sink):
    http_sink.delay("/slow", 2.5)
    run_id = trigger(client, deps, "slow-run")
    assert run_terminal(deps, run_id).status.value == "timed-out"
    run = detail(client, deps, run_id)
    first, call, last = run["steps"]
    assert (first["status"], first["output"]) == ("completed", {"n": 1})
    assert call["status"] == "failed" and call["error"]["type"] == "Timeout"
    assert "run timeout of 1000 ms" in call["error"]["message"]
    assert call["attempts"][0]["errorType"] == "Timeout"
    assert last["status"] == "skipped"
    assert run["error"]["step"] == "call" and "run timeout" in run["error"]["message"]
    assert [r.trigger_data["run"]["id"] for r in _handler_runs(deps)["watch-slow"]] == [run_id]


def test_continue_on_error_runs_later_steps_and_completes_with_errors(
        client, deps, http_sink, capsys):
    run_id = trigger(client, deps, "tolerant")
    assert run_terminal(deps, run_id).status.value == "completed-with-errors"
    first, second, third = detail(client, deps, run_id)["steps"]
    assert (first["status"], first["error"]["message"]) == ("failed", "tolerated")
    assert (second["status"], third["status"], third["output"]) == (
        "completed", "completed", 200)
    assert http_sink.calls("/after") == 1
    assert "RunsCompletedWithErrors" in _metrics(capsys, "tolerant")
    handlers = _handler_runs(deps)
    assert len(handlers["watch-slow"]) == 1 and handlers["watch-all"] == []


def test_failing_handler_runs_once_and_never_triggers_handlers_itself(client, deps, capsys):
    run_id = trigger(client, deps, "broken")
    assert run_terminal(deps, run_id).status.value == "failed"
    (relay,) = _handler_runs(deps)["watch-all"]
    assert run_terminal(deps, relay.id).status.value == "failed"
    handlers = _handler_runs(deps)
    assert [r.id for r in handlers["watch-all"]] == [relay.id]  # not a handler of itself
    assert handlers["watch-exhausted"] == []  # watches `exhausted` only
    assert handlers["watch-off"] == []  # disabled
    assert relay.trigger_data["run"]["status"] == "failed"
    metrics = capsys.readouterr().out
    assert ("RunsFailed", {"service": "automation-runs", "automation": "broken"}) in \
        emf_metrics(metrics)


def test_cancelled_run_dispatches_no_handler_and_counts_as_cancelled(client, deps, capsys):
    run_id = trigger(client, deps, "broken")
    response = post(client, f"/api/automations/runs/{run_id}/cancel", bearer(deps, "operator"))
    assert response.status_code == 200 and response.json_body["status"] == "cancelled"
    drain(deps)
    assert deps.repo.get_run(run_id).status == RunStatus.CANCELLED
    assert all(runs == [] for runs in _handler_runs(deps).values())
    assert "RunsCancelled" in _metrics(capsys, "broken")


def _crash_until_dead_lettered(deps) -> list[dict]:
    """Deliver step messages to a crashing executor until SQS moves them to the step DLQ."""
    dlq = SqsQueue(deps.settings.step_dlq, deps.settings)
    for _ in range(20):
        dead = dlq.receive(wait_seconds=0)
        if dead:
            return dead
        for message in deps.step_queue.receive(wait_seconds=0):
            assert deliver(deps, [message])  # reported failed, so not deleted
            deps.step_queue.client.change_message_visibility(
                QueueUrl=deps.step_queue.url, ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0)  # redeliver now rather than after 90 minutes
    raise AssertionError("no message reached the step DLQ")


def test_dead_lettered_run_fails_frees_its_slot_and_dispatches_handlers(
        client, deps, monkeypatch):
    crashed = trigger(client, deps, "limited")
    waiting = trigger(client, deps, "limited")
    with monkeypatch.context() as patch:
        patch.setattr(deps.repo, "claim_step", _explode)
        dead = _crash_until_dead_lettered(deps)
    assert deps.repo.get_run(waiting).status == RunStatus.PENDING  # no slot while it crashed
    dlq_arn = SqsQueue(deps.settings.step_dlq, deps.settings).arn
    event = sqs_event(dead, dlq_arn, deps.settings.region)
    result = app.handler_map["consume_step_dlq"](event, lambda_context("consume_step_dlq", 30)())
    assert result == {"batchItemFailures": []}
    run = detail(client, deps, crashed)
    assert run["status"] == "failed" and run["error"]["type"] == "ExecutorCrashed"
    assert "executor crashed repeatedly" in run["error"]["message"]
    assert deps.slots.holders("limited") == {waiting}
    assert run_terminal(deps, waiting).status.value == "completed"
    assert [r.trigger_data["run"]["id"] for r in _handler_runs(deps)["watch-all"]] == [crashed]


def _explode(*args, **kwargs):
    raise RuntimeError("executor bug")


def test_sweeper_times_out_a_run_whose_executor_vanished(client, deps, http_sink, monkeypatch):
    run_id = trigger(client, deps, "vanishing-run")  # 60 s: a loaded machine reaches `call`
    write_step = deps.repo.write_step

    def die_recording_call(run, step, **kwargs):
        if step.name == "call":
            raise Vanished()
        return write_step(run, step, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(deps.repo, "write_step", die_recording_call)
        (message,) = deps.step_queue.receive(wait_seconds=0)
        with pytest.raises(Vanished):
            deliver(deps, [message])
        deps.step_queue.delete(message["ReceiptHandle"])  # lost with the dead Lambda
    assert [s.status.value for s in deps.repo.get_detail(run_id)[1]] == ["completed", "running"]
    deps.overrides["clock"] = lambda: utcnow() + timedelta(seconds=61)  # past the deadline
    tick = app.handler_map["tick"]
    event = scheduled_event(datetime.now(timezone.utc), deps.settings.region, "tick")
    assert tick(event, lambda_context("tick", 60)())["sweep"]["timedOut"] == 1
    run = detail(client, deps, run_id)
    assert run["status"] == "timed-out" and run["events"][-1]["actor"] == "sweeper"
    assert [s["status"] for s in run["steps"]] == ["completed", "failed", "skipped"]
    assert run["steps"][1]["error"]["type"] == "Timeout"
    assert deps.repo.runs_in_status(RunStatus.RUNNING) == []
    assert tick(event, lambda_context("tick", 60)())["sweep"]["timedOut"] == 0
