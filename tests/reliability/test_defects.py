"""The defects the fault harness found (issue 11), each driven through the fault seam on the
in-memory twins: exactly-once follow-ups, steps of ended runs, failed messages back soon,
stale wake-ups, handler loops, same-status writers, and a cancel during a delay/wait."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.handlers.worker import process_step_record
from chalicelib.services import lifecycle
from chalicelib.services.delivery import INITIAL_HOLD_S, backoff_s
from chalicelib.services.executor import LEASE_MARGIN, process_step_message
from chalicelib.services.runs import cancel_run
from chalicelib.services.trigger import start_run
from tests.support.faults import Crash, FaultPlan, LostAnswer
from tests.support.stack import Clock, catalog_from, memory_container, pump

REFUSED = "http://127.0.0.1:1/nothing-listens-here"  # connection refused: a retryable error
AUTOMATIONS = f"""
automations:
  - name: tolerant
    trigger: {{ type: manual }}
    actions:
      - {{ name: first, type: flow, operator: fail, props: {{ message: "tolerated" }},
          continueOnError: true }}
      - {{ name: second, type: http, operator: get, props: {{ url: "{REFUSED}" }},
          retry: {{ maxAttempts: 2, delayMs: 100 }} }}
  - name: failing
    trigger: {{ type: manual }}
    actions:
      - {{ name: boom, type: flow, operator: fail, props: {{ message: "no" }} }}
  - name: flaky
    trigger: {{ type: manual }}
    actions:
      - {{ name: call, type: http, operator: get, props: {{ url: "{REFUSED}" }},
          retry: {{ maxAttempts: 3, delayMs: 2500 }} }}
  - name: two-steps
    trigger: {{ type: manual }}
    actions:
      - {{ name: a, type: data, operator: set, props: {{ value: 1 }} }}
      - {{ name: b, type: data, operator: set, props: {{ value: 2 }} }}
  - name: napping
    trigger: {{ type: manual }}
    actions:
      - {{ name: nap, type: delay, operator: wait, props: {{ ms: 600000 }} }}
      - {{ name: after, type: data, operator: set, props: {{ value: 1 }} }}
  - name: handler
    trigger: {{ type: automation-failure, statuses: [failed, exhausted] }}
    actions:
      - {{ name: note, type: data, operator: set, props: {{ value: 1 }} }}
  - name: watched
    trigger: {{ type: manual }}
    actions:
      - {{ name: boom, type: flow, operator: fail, props: {{ message: "watched fails" }} }}
  - name: looping-handler
    trigger: {{ type: automation-failure, automations: [watched], statuses: [failed] }}
    actions:
      - {{ name: again, type: automation, operator: call, props: {{ automation: watched }} }}
"""


@pytest.fixture
def clock():
    return Clock(tick_ms=50)  # retry waits pass as calls go by


@pytest.fixture
def faults():
    return FaultPlan()


@pytest.fixture
def deps(tmp_path, clock, faults):
    return memory_container(catalog_from(tmp_path, AUTOMATIONS), clock=clock, faults=faults)


def _start(deps, name):
    return start_run(deps, deps.catalog.get(name), "manual", {}, actor="test")


def _deliver(deps, body, remaining_ms=900_000):
    """One delivery; a crash or a failed call leaves the message for redelivery (True)."""
    try:
        process_step_message(deps, body, lambda: remaining_ms)
    except (Crash, Exception):  # noqa: BLE001 - SQS redelivers it
        return True
    return False


def _pump_redelivering(deps, limit=200):
    """Deliver queued messages (delays ignored); a message that failed is delivered again."""
    for _ in range(limit):
        batch = deps.step_queue.drain()
        if not batch:
            return
        for body, _delay in batch:
            while _deliver(deps, body):
                pass
    raise AssertionError("the step queue never drained")


def _runs(deps, name):
    return deps.repo.runs_in_status(RunStatus.COMPLETED, automation_name=name, limit=100) + \
        deps.repo.runs_in_status(RunStatus.FAILED, automation_name=name, limit=100)


@pytest.mark.parametrize("fault", ["crash_at:lifecycle.after_send:exhausted",
                                   "lose:exhausted_queue.send",
                                   "throttle:markers.put_once"])
def test_an_exhausted_run_sends_one_exhausted_message_and_starts_one_handler(deps, faults, fault):
    kind, point = fault.split(":", 1)
    getattr(faults, kind)(point)
    run = _start(deps, "tolerant")
    _pump_redelivering(deps)
    assert deps.repo.get_run(run.id).status == RunStatus.EXHAUSTED
    assert faults.injected[{"crash_at": "crash", "lose": "lost"}.get(kind, kind)] == 1
    assert [m["runId"] for m, _ in deps.exhausted_queue.drain()] == [run.id]
    handled = [r for r in _runs(deps, "handler") if r.trigger_data["run"]["id"] == run.id]
    assert len(handled) == 1


def test_a_crash_after_the_failure_message_starts_the_handler_once(deps, faults):
    faults.crash_at("lifecycle.after_send:failure")
    run = _start(deps, "failing")
    _pump_redelivering(deps)
    handled = [r for r in _runs(deps, "handler") if r.trigger_data["run"]["id"] == run.id]
    assert len(handled) == 1
    assert lifecycle.followed_up(deps, deps.repo.get_run(run.id))


def test_a_cancelled_runs_step_whose_executor_died_ends_once_its_lease_expired(deps, faults,
                                                                                clock):
    run = _start(deps, "two-steps")
    ((body, _),) = deps.step_queue.drain()
    faults.crash_at("executor.after_claim")  # died between claim and record
    assert _deliver(deps, body)
    cancel = cancel_run(deps.repo, run.id, actor="test", now=clock())
    lifecycle.cancelled(deps, cancel)
    [step] = deps.repo.get_detail(run.id)[1]
    assert step.status == StepStatus.RUNNING  # its lease is live: a result may still come
    ((look, delay),) = deps.step_queue.drain()  # the cancel sends a look at the lease's end
    assert delay >= (step.lease_until - clock()).total_seconds()

    clock.advance(seconds=delay + 1)
    process_step_message(deps, look, lambda: 900_000)

    [step] = deps.repo.get_detail(run.id)[1]
    assert (step.status, step.error["type"]) == (StepStatus.FAILED, "Interrupted")
    process_step_message(deps, body, lambda: 900_000)  # the dead executor's message returns
    assert deps.repo.get_detail(run.id)[1] == [step]


def test_the_redelivered_message_of_a_dead_executor_ends_the_step_of_an_ended_run(deps, faults,
                                                                                   clock):
    run = _start(deps, "two-steps")
    ((body, _),) = deps.step_queue.drain()
    faults.crash_at("executor.after_claim")
    assert _deliver(deps, body)
    deps.step_queue.drain()
    faults.crash_at("repo.get_detail")  # the cancel request died before it looked at steps
    lifecycle_run = cancel_run(deps.repo, run.id, actor="test", now=clock())
    with pytest.raises(Crash):
        lifecycle.cancelled(deps, lifecycle_run)
    clock.advance(seconds=3600)
    process_step_message(deps, body, lambda: 900_000)  # back after its hold (the lease)
    assert [s.status for s in deps.repo.get_detail(run.id)[1]] == [StepStatus.FAILED]


def _record(handle="h-1", receive_count=1, body=None):
    return SQSRecord({
        "messageId": "m-1", "receiptHandle": handle, "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "messageAttributes": {}, "eventSource": "aws:sqs",
    })


@pytest.mark.parametrize("receive_count", [1, 2, 3])
def test_a_failed_message_comes_back_after_a_short_backoff(deps, faults, receive_count):
    run = _start(deps, "two-steps")
    ((body, _),) = deps.step_queue.drain()
    faults.throttle("repo.get_detail")
    with pytest.raises(Exception, match="throttled"):
        process_step_record(deps, _record(receive_count=receive_count, body=body),
                            lambda: 900_000)
    assert deps.step_queue.visibility["h-1"] == backoff_s(receive_count)
    assert backoff_s(receive_count) <= 45  # not the queue's 5,400 s
    assert deps.repo.get_run(run.id).status == RunStatus.PENDING


def test_a_message_is_hidden_for_its_attempts_lease_and_a_failure_keeps_it_so(deps, faults,
                                                                             clock):
    _start(deps, "two-steps")
    ((body, _),) = deps.step_queue.drain()
    faults.throttle("repo.write_step")  # the attempt ran, its result write failed
    with pytest.raises(Exception, match="throttled"):
        process_step_record(deps, _record(body=body), lambda: 900_000)
    lease = 30 + LEASE_MARGIN.total_seconds()
    # Hidden until the lease ends, so the redelivery can claim the step again.
    assert deps.step_queue.visibility["h-1"] >= lease > INITIAL_HOLD_S


def _deliver_with_duplicates(deps, clock, copies):
    """Deliver every message `copies` times at its due time; returns how many were sent."""
    sent = 0
    pending = []
    for _ in range(500):
        for body, delay in deps.step_queue.drain():
            sent += 1
            pending += [(clock.now + timedelta(seconds=delay), body)] * copies
        if not pending:
            return sent
        pending.sort(key=lambda item: item[0])
        due, body = pending.pop(0)
        clock.now = max(clock.now, due)
        process_step_message(deps, body, lambda: 900_000)
    raise AssertionError("never drained")


def test_duplicate_wake_ups_do_not_multiply(tmp_path):
    sent = {}
    for copies in (1, 3, 6):
        clock = Clock(tick_ms=1)
        deps = memory_container(catalog_from(tmp_path, AUTOMATIONS), clock=clock)
        run = _start(deps, "flaky")
        sent[copies] = _deliver_with_duplicates(deps, clock, copies)
        assert deps.repo.get_run(run.id).status == RunStatus.EXHAUSTED
        [call] = deps.repo.get_detail(run.id)[1]
        assert call.attempt == 3
    # A copy of the message that parked the step may pass its wake-up on once (it cannot be
    # told from that message's redelivery after a crash); every other copy is dropped, so
    # the count does not grow with the copies.
    assert sent[6] == sent[3] <= sent[1] + 2, sent


def test_a_handler_calling_the_automation_it_watches_stops_at_the_call_depth_limit(deps):
    first = _start(deps, "watched")
    pump(deps, limit=400)
    handler_runs = _runs(deps, "looping-handler")
    watched = _runs(deps, "watched")
    assert 1 <= len(handler_runs) <= 10
    deepest = max(watched, key=lambda run: run.depth)
    stopped = [e for e in deepest.events if e.type == lifecycle.HANDLERS_STOPPED]
    assert len(stopped) == 1
    assert stopped[0].detail["error"]["type"] == "CallDepthExceeded"
    assert "limit of 10" in stopped[0].detail["error"]["message"]
    assert first.id in {r.id for r in watched}


def test_a_writer_with_an_older_copy_does_not_undo_another_writers_change(deps, clock):
    run = _start(deps, "two-steps")
    started = lifecycle.begin(deps, deps.repo.get_run(run.id))
    moved = started.deadline_at + timedelta(minutes=5)
    lifecycle.write_run(deps.repo, started,
                        lambda stored: stored.evolve(attempt=3, deadline_at=moved),
                        expected_status=RunStatus.RUNNING)

    ended = lifecycle.finish(deps, started, RunStatus.COMPLETED)  # from its stale copy

    stored = deps.repo.get_run(run.id)
    assert ended is not None and stored.status == RunStatus.COMPLETED
    assert (stored.attempt, stored.deadline_at) == (3, moved)


def test_a_cancel_ends_a_step_parked_in_a_delay_wait_at_once(deps, clock):
    run = _start(deps, "napping")
    ((body, _),) = deps.step_queue.drain()
    process_step_message(deps, body, lambda: 900_000)
    [nap] = deps.repo.get_detail(run.id)[1]
    assert nap.status == StepStatus.RUNNING and nap.next_attempt_at is not None

    lifecycle.cancelled(deps, cancel_run(deps.repo, run.id, actor="test", now=clock()))

    [nap] = deps.repo.get_detail(run.id)[1]
    assert nap.status == StepStatus.SKIPPED and nap.completed_at is not None
    (wake_up, _), = deps.step_queue.drain()
    process_step_message(deps, wake_up, lambda: 900_000)  # the wake-up finds nothing to do
    assert deps.repo.get_detail(run.id)[1] == [nap]


def test_a_lost_answer_is_an_error_after_the_write_took_effect(deps, faults):
    faults.lose("repo.create_run")
    with pytest.raises(LostAnswer):
        _start(deps, "two-steps")
    assert len(deps.repo.runs_in_status(RunStatus.PENDING, limit=10)) == 1
