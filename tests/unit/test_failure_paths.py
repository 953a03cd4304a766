"""Failure paths of the executor on in-memory twins, with a clock the tests move: retry waits
capped by the run deadline, long attempts, follow-ups after a crash, cancel during a retry
wait, the failure handler's `failedStep`, and the step-DLQ consumer."""
from __future__ import annotations

import pytest

from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.services.lifecycle import fail_crashed_run
from chalicelib.services import lifecycle
from chalicelib.services.executor import process_step_message
from chalicelib.services.runs import cancel_run
from chalicelib.services.trigger import start_run
from tests.support.stack import Clock, catalog_from, memory_container, pump

REFUSED = "http://127.0.0.1:1/nothing-listens-here"  # connection refused: a retryable error
AUTOMATIONS = f"""
automations:
  - name: capped
    trigger: {{ type: manual }}
    timeout: 2000
    actions:
      - {{ name: call, type: http, operator: get, props: {{ url: "{REFUSED}" }},
          retry: {{ maxAttempts: 3, delayMs: 60000 }} }}
  - name: patient
    trigger: {{ type: manual }}
    actions:
      - {{ name: long, type: data, operator: set, props: {{ value: 1 }}, timeout: 900000 }}
  - name: limited
    trigger: {{ type: manual }}
    concurrency: {{ limit: 1 }}
    actions:
      - {{ name: boom, type: flow, operator: fail, props: {{ message: "no" }} }}
  - name: tolerant
    trigger: {{ type: manual }}
    actions:
      - {{ name: first, type: flow, operator: fail, props: {{ message: "tolerated" }},
          continueOnError: true }}
      - {{ name: second, type: http, operator: get, props: {{ url: "{REFUSED}" }},
          retry: {{ maxAttempts: 2, delayMs: 100 }} }}
  - name: two-steps
    trigger: {{ type: manual }}
    actions:
      - {{ name: a, type: data, operator: set, props: {{ value: 1 }} }}
      - {{ name: b, type: data, operator: set, props: {{ value: 2 }} }}
  - name: handler
    trigger: {{ type: automation-failure, statuses: [failed, exhausted, timed-out] }}
    actions:
      - {{ name: note, type: data, operator: set, props: {{ value: "{{{{trigger.data.run}}}}" }} }}
"""


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(tmp_path, clock):
    return memory_container(catalog_from(tmp_path, AUTOMATIONS), clock=clock)


def _start(deps, name):
    return start_run(deps, deps.catalog.get(name), "manual", {}, actor="test")


def _deliver_one(deps, remaining_ms: int = 900_000):
    (body, delay), *rest = deps.step_queue.drain()
    deps.step_queue.messages.extend(rest)
    process_step_message(deps, body, lambda: remaining_ms)
    return body, delay


def test_retry_wait_past_the_run_deadline_wakes_at_the_deadline_and_times_out(deps, clock):
    run = _start(deps, "capped")
    _deliver_one(deps)
    ((body, delay),) = deps.step_queue.drain()
    assert delay <= 2  # not the 60 s backoff: the run's deadline comes first
    clock.advance(seconds=delay + 0.5)
    process_step_message(deps, body, lambda: 900_000)
    done, (call,) = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.TIMED_OUT
    assert call.status == StepStatus.FAILED and len(call.attempts) == 1
    assert call.error["message"] == "run timeout of 2000 ms exceeded"


def test_a_step_with_the_longest_timeout_runs_in_a_fresh_invocation(deps):
    run = _start(deps, "patient")
    pump(deps, remaining_ms=899_000)  # what a new 900 s invocation has left
    assert deps.repo.get_run(run.id).status == RunStatus.COMPLETED


def test_follow_ups_lost_to_a_crash_are_repeated_by_the_redelivered_message(deps, monkeypatch):
    run = _start(deps, "limited")
    waiting = _start(deps, "limited")
    body, _ = deps.step_queue.drain()[0]  # the first run's (admission may send it twice)
    with monkeypatch.context() as patch:
        patch.setattr(lifecycle, "after_end", _crash)
        with pytest.raises(RuntimeError):
            process_step_message(deps, body, lambda: 900_000)
    assert deps.repo.get_run(run.id).status == RunStatus.FAILED
    assert deps.slots.holders("limited") == {run.id}  # leaked until the message returns
    process_step_message(deps, body, lambda: 900_000)  # SQS redelivers it
    assert deps.slots.holders("limited") == {waiting.id}
    pump(deps)
    handled = [r for r in _runs(deps, "handler") if r.trigger_data["run"]["id"] == run.id]
    assert len(handled) == 1


def test_a_duplicate_message_for_an_exhausted_run_sends_no_second_exhausted_message(tmp_path):
    deps = memory_container(catalog_from(tmp_path, AUTOMATIONS), clock=Clock(tick_ms=50))
    run = _start(deps, "tolerant")
    messages = pump(deps)
    assert deps.repo.get_run(run.id).status == RunStatus.EXHAUSTED
    assert len(deps.exhausted_queue.messages) == 1
    for body in messages:
        if body.get("runId") == run.id and "kind" not in body:
            process_step_message(deps, body, lambda: 900_000)  # SQS delivers again
    assert len(deps.exhausted_queue.messages) == 1
    assert not [m for m, _ in deps.step_queue.drain() if m.get("kind") == "failure"]


def _crash(*args, **kwargs):
    raise RuntimeError("executor died after the ending was written")


def _runs(deps, name):
    from chalicelib.domain.model import RunFilter  # noqa: PLC0415

    return deps.repo.list_runs(RunFilter(automation_name=name), limit=100).runs


def test_cancel_during_a_retry_wait_closes_the_waiting_step_without_another_attempt(
        deps, clock):
    run = _start(deps, "capped")
    _deliver_one(deps)
    cancelled = cancel_run(deps.repo, run.id, actor="test", now=clock())
    lifecycle.cancelled(deps, cancelled)
    clock.advance(seconds=3)
    pump(deps)
    done, (call,) = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.CANCELLED
    assert (call.status, call.attempt, call.next_attempt_at) == (StepStatus.FAILED, 1, None)
    assert _runs(deps, "handler") == []


def test_failure_trigger_names_the_step_that_ended_the_run(tmp_path):
    deps = memory_container(catalog_from(tmp_path, AUTOMATIONS), clock=Clock(tick_ms=50))
    run = _start(deps, "tolerant")
    pump(deps)
    assert deps.repo.get_run(run.id).status == RunStatus.EXHAUSTED
    (handler,) = _runs(deps, "handler")
    failing = handler.trigger_data["run"]
    assert (failing["failedStep"], failing["attempt"], failing["maxAttempts"]) == (
        "second", 2, 2)


def test_dead_letter_fails_the_step_in_flight_even_past_the_message_step(deps, monkeypatch):
    run = _start(deps, "two-steps")
    write_step = deps.repo.write_step

    def crash_on_b(run_id, step, **kwargs):
        if step.name == "b":
            raise RuntimeError("executor bug")
        return write_step(run_id, step, **kwargs)

    monkeypatch.setattr(deps.repo, "write_step", crash_on_b)
    body, _ = deps.step_queue.drain()[0]
    with pytest.raises(RuntimeError):
        process_step_message(deps, body, lambda: 900_000)
    monkeypatch.undo()
    fail_crashed_run(deps, body["runId"])  # step 1 was in flight, not the first one
    done, (a, b) = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.FAILED and done.error["step"] == "b"
    assert a.status == StepStatus.COMPLETED
    assert b.status == StepStatus.FAILED and b.error["type"] == "ExecutorCrashed"
