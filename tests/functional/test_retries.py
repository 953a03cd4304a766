"""Retries end to end on moto: backoff between attempts through (delayed) step messages,
exhaustion with its dead-letter message and failure handler, non-retried 4xx, Retry-After."""
from __future__ import annotations

import json

import pytest

from tests.support.runs import (
    attempt_times, detail, drain, emf_metrics, gaps_ms, listed, metric_names, runs_of, trigger,
)
from tests.support.sqs import run_terminal

AUTOMATIONS = """
automations:
  - name: always-failing
    trigger: { type: manual }
    actions:
      - name: call
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/down" }
        retry: { maxAttempts: 3, delayMs: 100, strategy: exponential }
      - { name: after, type: data, operator: set, props: { value: 1 } }
  - name: flaky
    trigger: { type: manual }
    retry: { maxAttempts: 3, delayMs: 100 }
    actions:
      - { name: first, type: data, operator: set, props: { value: { n: 1 } } }
      - name: call
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/flaky", body: { n: "{{steps.first.n}}" } }
  - name: missing
    trigger: { type: manual }
    retry: { maxAttempts: 3, delayMs: 100 }
    actions:
      - name: call
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/missing" }
  - name: throttled
    trigger: { type: manual }
    actions:
      - name: call
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/busy" }
        retry: { maxAttempts: 2, delayMs: 100 }
  - name: step-policy-first
    trigger: { type: manual }
    retry: { maxAttempts: 4, delayMs: 100 }
    actions:
      - name: call
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/down" }
        retry: { maxAttempts: 2, delayMs: 100 }
  - name: on-exhaustion
    trigger: { type: automation-failure, automations: [always-failing, missing] }
    actions:
      - { name: note, type: data, operator: set, props: { value: "{{trigger.data.run}}" } }
"""


@pytest.fixture
def deps(wire, http_sink):
    http_sink.respond("/down", status=503, body={"error": "down"})
    http_sink.respond("/missing", status=404, body={"error": "no such thing"})
    return wire(AUTOMATIONS)


def _exhausted_messages(deps):
    return [json.loads(m["Body"]) for m in deps.exhausted_queue.receive(wait_seconds=0)]


def test_always_failing_step_backs_off_exponentially_then_exhausts(
        client, deps, http_sink, capsys):
    run_id = trigger(client, deps, "always-failing")
    assert run_terminal(deps, run_id).status.value == "exhausted"
    run = detail(client, deps, run_id)
    call, after = run["steps"]
    assert http_sink.calls("/down") == 3
    assert (call["status"], call["attempt"], after["status"]) == ("failed", 3, "skipped")
    assert [a["attempt"] for a in call["attempts"]] == [1, 2, 3]
    assert all(a["stack"] and a["errorType"] == "HttpError" for a in call["attempts"])
    assert "503" in call["attempts"][0]["error"]
    starts = [started for started, _ in attempt_times(call)]
    assert starts == sorted(starts)
    first_gap, second_gap = gaps_ms(call)
    assert first_gap >= 100 and second_gap >= 200
    assert run["attempt"] == 3 and run["error"]["step"] == "call"
    assert _exhausted_messages(deps) == [{
        "runId": run_id, "automationName": "always-failing", "error": run["error"],
        "attempts": 3}]
    out = capsys.readouterr().out
    assert {"RunsStarted", "QueueWaitMs", "StepRetries", "StepDurationMs", "RunsExhausted",
            "RunDurationMs"} <= metric_names(out, "always-failing")
    retries = [d for name, d in emf_metrics(out) if name == "StepRetries" and "automation" in d]
    assert retries == [{"service": "automation-runs", "automation": "always-failing"}] * 2


def test_the_steps_retry_policy_wins_over_the_automations(client, deps, http_sink):
    run_id = trigger(client, deps, "step-policy-first")
    assert run_terminal(deps, run_id).status.value == "exhausted"
    [call] = detail(client, deps, run_id)["steps"]
    assert (http_sink.calls("/down"), call["attempt"], len(call["attempts"])) == (2, 2, 2)


def test_exhausted_run_starts_its_failure_handler_exactly_once(client, deps):
    run_id = trigger(client, deps, "always-failing")
    run_terminal(deps, run_id)
    drain(deps, times=2)  # the handler's dispatch message, delivered twice
    (handler,) = runs_of(deps, "on-exhaustion")
    assert run_terminal(deps, handler.id).status.value == "completed"
    assert handler.trigger_type == "automation-failure"
    failing = handler.trigger_data["run"]
    assert (failing["id"], failing["status"], failing["failedStep"]) == (
        run_id, "exhausted", "call")
    assert (failing["attempt"], failing["maxAttempts"]) == (3, 3)
    assert detail(client, deps, handler.id)["steps"][0]["output"]["attempt"] == 3
    assert len(runs_of(deps, "on-exhaustion")) == 1


def test_step_failing_once_then_succeeding_completes_without_retry_metadata(
        client, deps, http_sink, capsys):
    http_sink.fail("/flaky", status=500, times=1)
    run_id = trigger(client, deps, "flaky")
    assert run_terminal(deps, run_id).status.value == "completed"
    run = detail(client, deps, run_id)
    first, call = run["steps"]
    assert (first["attempt"], call["attempt"], call["error"]) == (1, 2, None)
    assert [a["error"] is None for a in call["attempts"]] == [False, True]
    assert set(call["output"]) == {"status", "headers", "body"}
    assert json.loads(call["output"]["body"]["body"]) == {"n": 1}
    assert run["attempt"] == 2
    assert [r["attempt"] for r in listed(client, deps, "flaky")] == [2]
    assert http_sink.calls("/flaky") == 2
    assert _exhausted_messages(deps) == []
    assert {"StepRetries", "RunsCompleted"} <= metric_names(capsys.readouterr().out, "flaky")


def test_http_404_is_not_retried_and_fails_the_run(client, deps, http_sink):
    run_id = trigger(client, deps, "missing")
    assert run_terminal(deps, run_id).status.value == "failed"
    (call,) = detail(client, deps, run_id)["steps"]
    assert http_sink.calls("/missing") == 1
    assert (call["status"], call["attempt"], len(call["attempts"])) == ("failed", 1, 1)
    assert call["error"]["retryable"] is False and call["error"]["detail"]["status"] == 404
    assert _exhausted_messages(deps) == []
    drain(deps)
    (handler,) = runs_of(deps, "on-exhaustion")  # default statuses watch `failed` too
    assert handler.trigger_data["run"]["maxAttempts"] == 3


def test_retry_after_longer_than_the_backoff_is_honoured(client, deps, http_sink):
    http_sink.fail("/busy", status=503, times=1, retry_after="2")
    run_id = trigger(client, deps, "throttled")
    assert run_terminal(deps, run_id).status.value == "completed"
    (call,) = detail(client, deps, run_id)["steps"]
    assert call["attempt"] == 2 and http_sink.calls("/busy") == 2
    assert gaps_ms(call)[0] >= 2000
