"""Edge cases of execution found in review: secrets in errors, halts after tolerated failures,
cancel before a claim, long waits, racing deliveries and keys, follow-ups, masking, ticks."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from chalicelib.domain.errors import AlreadyExists
from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.domain.templates import mask
from chalicelib.handlers.scheduler import scheduled_minute
from chalicelib.services.lifecycle import fail_crashed_run
from chalicelib.services import lifecycle, webhook
from chalicelib.services.executor import process_step_message
from chalicelib.services.replay import replay
from chalicelib.services.runs import cancel_run
from chalicelib.services.trigger import start_once, start_run
from tests.support.stack import Clock, catalog_from, memory_container, pump

AUTOMATIONS = """
automations:
  - name: leaky
    trigger: { type: manual }
    actions:
      - { name: call, type: http, operator: get,
          props: { url: "{{secrets.SINK}}/missing?key={{secrets.APIKEY}}" } }
  - name: tolerant-then-halt
    trigger: { type: manual }
    actions:
      - { name: a, type: flow, operator: fail, props: { message: "tolerated" },
          continueOnError: true }
      - { name: gate, type: filter, operator: continue, props: { condition: "`false`" } }
      - { name: c, type: data, operator: set, props: { value: 1 } }
  - name: two
    trigger: { type: manual }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
      - { name: b, type: data, operator: set, props: { value: 2 } }
  - name: sleepy
    trigger: { type: manual }
    timeout: 60000
    actions:
      - { name: nap, type: delay, operator: wait, props: { ms: 3600000 } }
      - { name: after, type: data, operator: set, props: { value: "{{steps.nap.waitedMs}}" } }
  - name: hook
    trigger: { type: webhook, deduplicationKey: "{{trigger.data.body.id}}" }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
"""


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(tmp_path, clock):
    return memory_container(catalog_from(tmp_path, AUTOMATIONS), clock=clock)


def _start(deps, name, data=None, **fields):
    return start_run(deps, deps.catalog.get(name), "manual", data or {}, actor="test", **fields)


def test_secrets_never_reach_stored_errors(deps, http_sink, monkeypatch):
    monkeypatch.setenv("RUNS_SECRET_SINK", http_sink.url)
    monkeypatch.setenv("RUNS_SECRET_APIKEY", "supersecret123")
    http_sink.respond("/missing", status=404, body={"echo": "supersecret123"})
    run = _start(deps, "leaky")
    pump(deps)
    ended, steps = deps.repo.get_detail(run.id)
    assert ended.status == RunStatus.FAILED
    stored = repr((ended.error, steps[0].error, steps[0].attempts))
    assert "supersecret123" not in stored
    assert "[redacted]" in repr(ended.error)


def test_a_filter_halt_after_a_tolerated_failure_is_completed_with_errors(deps):
    run = _start(deps, "tolerant-then-halt")
    pump(deps)
    ended, steps = deps.repo.get_detail(run.id)
    assert ended.status == RunStatus.COMPLETED_WITH_ERRORS
    assert [s.status for s in steps] == [StepStatus.FAILED, StepStatus.COMPLETED]
    again, _ = replay(deps, run.id, actor="test", is_admin=False)  # resumes at the failure
    assert again.resume_from == 0


def test_a_cancel_landing_before_the_claim_stops_the_step(deps):
    run = _start(deps, "two")
    claim = deps.repo.claim_step

    def claim_then_cancel(run_id, step, **kwargs):
        claimed = claim(run_id, step, **kwargs)
        if step.index == 1:  # the cancel is written between the executor's steps
            cancel_run(deps.repo, run_id, actor="token:t", now=deps.clock())
        return claimed

    deps.repo.claim_step = claim_then_cancel
    pump(deps)
    ended, steps = deps.repo.get_detail(run.id)
    assert ended.status == RunStatus.CANCELLED
    assert [s.status for s in steps] == [StepStatus.COMPLETED, StepStatus.SKIPPED]
    assert steps[1].output is None


def test_a_durable_wait_longer_than_the_run_timeout_completes(deps, clock):
    run = _start(deps, "sleepy")
    for _ in range(50):
        batch = deps.step_queue.drain()
        if not batch:
            break
        for body, delay in batch:
            clock.advance(seconds=delay)  # SQS holds the message that long
            process_step_message(deps, body, lambda: 900_000)
    ended, steps = deps.repo.get_detail(run.id)
    assert ended.status == RunStatus.COMPLETED
    assert steps[1].output >= 3_600_000


def test_racing_retried_webhook_deliveries_start_one_new_run(deps):
    data = dict(method="POST", path="/hook", query={}, headers={}, raw_body=b"{}")
    original, _ = webhook.receive(deps, "hook", body={"id": "e1"}, **data)
    failed = deps.repo.get_run(original.id).evolve(status=RunStatus.CANCELLED)
    deps.repo.update_run(failed, expected_status=RunStatus.PENDING)
    barrier = threading.Barrier(2)
    get_run = deps.repo.get_run

    def get_run_together(run_id):
        found = get_run(run_id)
        if run_id == original.id:
            barrier.wait(timeout=5)  # both deliveries have read the failed original
        return found

    deps.repo.get_run = get_run_together
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        webhook.receive(deps, "hook", body={"id": "e1"}, **data)[0].id)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and original.id not in results


def test_the_first_caller_of_a_key_gets_the_run_a_retry_created(deps):
    created_by_retry = []

    def start(run_id):
        if not created_by_retry:  # the retry found the key first and created the run
            created_by_retry.append(_start(deps, "two", run_id=run_id))
        return _start(deps, "two", run_id=run_id)

    run, created = start_once(deps, "trigger", "two:k", start)
    assert created is False and run.id == created_by_retry[0].id


def test_already_exists_is_raised_for_a_second_create(deps):
    run = _start(deps, "two")
    with pytest.raises(AlreadyExists):
        _start(deps, "two", run_id=run.id)


def test_only_an_ending_with_follow_ups_writes_its_closing_marker(deps):
    done = _start(deps, "two")
    failed = _start(deps, "leaky")  # its failure dispatches handlers: a follow-up
    pump(deps)
    assert deps.repo.get_run(done.id).status == RunStatus.COMPLETED
    assert deps.repo.get_run(failed.id).status == RunStatus.FAILED
    # Nothing follows a completed run without a concurrency limit: no marker, none needed.
    assert deps.markers.get(f"ended:{done.id}") is None
    assert lifecycle.followed_up(deps, deps.repo.get_run(done.id))
    assert deps.markers.get(f"ended:{failed.id}") == {"status": "failed"}


def test_a_dead_letter_for_an_ended_run_finishes_its_follow_ups(deps, monkeypatch):
    run = _start(deps, "leaky")
    deps.step_queue.drain()
    process = monkeypatch.setattr
    process(lifecycle, "after_end", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("died")))
    ended = lifecycle.begin(deps, deps.repo.get_run(run.id))
    with pytest.raises(RuntimeError):
        lifecycle.finish(deps, ended, RunStatus.FAILED, error={"message": "x"})
    monkeypatch.undo()
    assert not lifecycle.followed_up(deps, deps.repo.get_run(run.id))
    fail_crashed_run(deps, run.id)
    assert lifecycle.followed_up(deps, deps.repo.get_run(run.id))
    assert [m for m, _ in deps.step_queue.drain() if m.get("kind") == "failure"]


def test_masking_by_key_name_applies_to_header_maps_only():
    value = {"documentSignature": "abc", "cookie": 1,
             "headers": {"Cookie": "c=1", "Accept": "json"}}
    assert mask(value) == {"documentSignature": "abc", "cookie": 1,
                           "headers": {"Cookie": "[redacted]", "Accept": "json"}}


def test_the_tick_uses_the_scheduled_minute_of_its_event():
    class CloudWatchEvent:
        time = "2026-05-01T10:30:00Z"

    expected = datetime(2026, 5, 1, 10, 30, tzinfo=timezone.utc)
    assert scheduled_minute(CloudWatchEvent()) == expected
    assert scheduled_minute({"time": "2026-05-01T10:30:00Z"}) == expected
    assert scheduled_minute({}) is None
