"""Races around concurrency slots and cancel, on moto (DynamoDB atomic per request): cancel
against the executor's final write, stale reads slipped between admission's read and its
write, an executor killed mid-step, and a lost step message."""
from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.dynamo_repository import DynamoRunRepository
from chalicelib.bootstrap import use_container
from chalicelib.domain.clock import utcnow
from chalicelib.domain.statuses import TERMINAL, RunStatus, StepStatus
from chalicelib.services import lifecycle
from chalicelib.services.sweeper import sweep
from tests.support.apps import install
from tests.support.drive import (
    Api, all_terminal, deliver_concurrently, deliver_one, drain_queue,
)
from tests.support.sqs import deliver

AUTOMATIONS = """
automations:
  - name: single
    trigger: { type: manual }
    concurrency: { limit: 1 }
    timeout: 60000
    actions:
      - name: call
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/single/{{trigger.data.n}}" }
      - { name: after, type: http, operator: post, props: { url: "{{secrets.SINK}}/after" } }
  - name: pair
    trigger: { type: manual }
    concurrency: { limit: 2 }
    actions:
      - name: call
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/pair/{{trigger.data.n}}" }
"""
TERMINAL_NAMES = {status.value for status in TERMINAL}


class Clock:
    """Real time plus an offset a test can advance (to pass a run's deadline at once)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self):
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class Interleave:
    """The real repository, where a test slips an action in right after one read answers
    (as if another Lambda wrote between that read and the write based on it)."""

    def __init__(self, repo) -> None:
        self._repo = repo
        self._planned: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def after_next(self, method: str, action, when=lambda *args, **kwargs: True) -> None:
        self._planned[method] = (when, action)

    def __getattr__(self, name: str):
        real = getattr(self._repo, name)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            answer = real(*args, **kwargs)
            with self._lock:
                planned = self._planned.get(name)
                fire = planned is not None and planned[0](*args, **kwargs)
                if fire:
                    del self._planned[name]
            if fire:
                planned[1]()
            return answer

        return call


class Killed(BaseException):
    """The Lambda running the executor vanished (timeout, OOM): nothing after it runs."""


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def repo(aws, settings):
    return Interleave(DynamoRunRepository(settings))


@pytest.fixture
def deps(aws, settings, tmp_path, http_sink, monkeypatch, clock, repo):
    monkeypatch.setenv("RUNS_SECRET_SINK", http_sink.url)
    yield install(settings, tmp_path, AUTOMATIONS, clock=clock, repo=repo)
    use_container(None)


@pytest.fixture
def api(deps):
    with Client(app) as client:
        yield Api(client, deps)


def _race_cancel_with_final_write(api, deps, http_sink, n: int) -> tuple[int, str]:
    """One round: a worker runs the run's last step while the API cancels around its end."""
    run_id = api.trigger("pair", {"n": n})
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def execute() -> None:
        barrier.wait()
        outcome["delivered"] = drain_queue(deps)

    def cancel() -> None:
        barrier.wait()
        deadline = time.monotonic() + 5
        while http_sink.calls(f"/pair/{n}") == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(random.uniform(0, 0.06))  # land before, during or after the final write
        outcome["response"] = api.cancel(run_id)

    threads = [threading.Thread(target=execute, daemon=True),
               threading.Thread(target=cancel, daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert outcome.keys() == {"delivered", "response"}, "a side of the race did not finish"
    response = outcome["response"]
    assert not [b for b in outcome["delivered"] + drain_queue(deps) if b.get("kind")]
    return response.status_code, run_id


def test_cancel_racing_the_final_write_has_exactly_one_winner_reported_everywhere(
        api, deps, http_sink):
    for n in range(8):
        http_sink.respond(f"/pair/{n}", delay_s=0.03)
        code, run_id = _race_cancel_with_final_write(api, deps, http_sink, n)
        detail = api.detail(run_id)
        [listed] = [r for r in api.listed(automationName="pair") if r["id"] == run_id]
        expected = {200: "cancelled", 409: "completed"}[code]
        assert detail["status"] == listed["status"] == expected, (code, detail["status"])
        endings = [e["to"] for e in detail["events"] if e["to"] in TERMINAL_NAMES]
        assert endings == [expected]
        assert detail["steps"][0]["status"] == "completed"  # the step's real result stands
        assert http_sink.calls(f"/pair/{n}") == 1
        assert (detail["cancelledAt"] is not None) == (expected == "cancelled")
    assert deps.slots.holders("pair") == set()


def test_a_cancel_landing_between_admissions_read_and_its_acquire_leaks_no_slot(
        api, deps, repo, http_sink):
    holder = api.trigger("single", {"n": 0})
    waiting = api.trigger("single", {"n": 1})

    def cancel_waiting() -> None:
        assert api.cancel(waiting).status_code == 200

    # When the holder ends, admission reads the waiting list; the cancel lands right then.
    repo.after_next("runs_in_status", cancel_waiting,
                    when=lambda status, **kwargs: status == RunStatus.PENDING)
    while api.status(holder) not in TERMINAL_NAMES:
        deliver_one(deps)

    assert (api.status(holder), api.status(waiting)) == ("completed", "cancelled")
    assert deps.slots.holders("single") == set()  # the stale admission gave its slot back
    later = api.trigger("single", {"n": 2})
    assert deps.slots.holders("single") == {later}
    drain_queue(deps)
    assert api.status(later) == "completed"
    assert http_sink.calls("/single/1") == 0
    assert deps.slots.holders("single") == set()


def test_a_cancel_whose_read_saw_pending_still_cancels_a_run_admitted_meanwhile(
        api, deps, repo, http_sink):
    run_id = api.trigger("single", {"n": 0})

    def executor_admits() -> None:
        assert lifecycle.begin(deps, deps.repo.get_run(run_id)) is not None

    repo.after_next("get_run", executor_admits, when=lambda wanted: wanted == run_id)
    response = api.cancel(run_id)

    assert response.status_code == 200, response.body
    drain_queue(deps)
    detail = api.detail(run_id)
    assert detail["status"] == "cancelled"
    assert [e["to"] for e in detail["events"] if e["to"] != "pending"] == [
        "running", "cancelled"]
    assert http_sink.calls("/single/0") == 0
    assert deps.slots.holders("single") == set()


def test_a_run_whose_executor_was_killed_mid_step_is_timed_out_by_the_sweeper(
        api, deps, clock, http_sink, monkeypatch):
    def die(*args, **kwargs):
        raise Killed()

    killed = api.trigger("single", {"n": 0})
    waiting = api.trigger("single", {"n": 1})
    [message] = deps.step_queue.receive(max_messages=1, wait_seconds=0)
    with monkeypatch.context() as patched, pytest.raises(Killed):
        patched.setattr("chalicelib.services.executor.run_attempt", die)
        deliver(deps, [message])
    deps.step_queue.delete(message["ReceiptHandle"])  # no message will ever come back
    for lost in deps.step_queue.receive(max_messages=10, wait_seconds=0):
        deps.step_queue.delete(lost["ReceiptHandle"])  # nor any duplicate
    [step] = deps.repo.get_detail(killed)[1]
    assert step.status == StepStatus.RUNNING and step.claim_token  # claimed, under lease

    assert sweep(deps)["timedOut"] == 0  # before its deadline the run is left alone
    clock.advance(61)  # past the 60 s run timeout, without waiting for it
    assert sweep(deps)["timedOut"] == 1
    drain_queue(deps)

    detail = api.detail(killed)
    assert detail["status"] == "timed-out"
    assert [s["status"] for s in detail["steps"]] == ["failed", "skipped"]
    assert detail["steps"][0]["error"]["type"] == "Timeout"
    assert http_sink.calls("/single/0") == 0 and http_sink.calls("/after") == 1
    assert api.status(waiting) == "completed"  # the killed run's slot went to the next
    assert deps.slots.holders("single") == set()


def test_a_slot_held_by_a_run_whose_message_was_lost_is_readmitted_by_the_sweeper(
        api, deps, http_sink):
    admitted = api.trigger("single", {"n": 0})
    waiting = api.trigger("single", {"n": 1})
    for lost in deps.step_queue.receive(max_messages=10, wait_seconds=0):
        deps.step_queue.delete(lost["ReceiptHandle"])
    assert deps.slots.holders("single") == {admitted}
    assert api.status(admitted) == "pending"

    assert sweep(deps)["admitted"] >= 1
    drain_queue(deps)

    assert (api.status(admitted), api.status(waiting)) == ("completed", "completed")
    assert http_sink.calls("/single/0") == http_sink.calls("/single/1") == 1
    assert deps.slots.holders("single") == set()


def test_a_slot_left_held_by_a_crash_after_a_cancel_is_reclaimed_by_the_sweeper(
        api, deps, http_sink, monkeypatch):
    cancelled = api.trigger("single", {"n": 0})
    waiting = api.trigger("single", {"n": 1})

    def throttled(automation: str, run_id: str) -> None:
        raise RuntimeError("ProvisionedThroughputExceededException")

    with monkeypatch.context() as patched:
        patched.setattr(deps.slots, "release", throttled)
        assert api.cancel(cancelled).status_code == 500  # written, but the release failed
    for consumed in deps.step_queue.receive(max_messages=10, wait_seconds=0):
        deps.step_queue.delete(consumed["ReceiptHandle"])  # no message will come to help
    assert api.cancel(cancelled).status_code == 409  # a retried cancel cannot free it either
    assert deps.slots.holders("single") == {cancelled}

    sweep(deps)
    drain_queue(deps)

    assert api.status(waiting) == "completed"
    assert http_sink.calls("/single/0") == 0
    assert deps.slots.holders("single") == set()


def test_cancels_racing_admission_and_execution_leave_no_slot_and_no_excess(
        api, deps, http_sink):
    for n in range(8):
        http_sink.respond(f"/pair/{n}", delay_s=0.02)
    run_ids = [api.trigger("pair", {"n": n}) for n in range(8)]
    doomed = run_ids[1::2]
    cancels: dict[str, int] = {}

    def observe() -> None:
        assert len(deps.slots.holders("pair")) <= 2

    def canceller() -> None:
        for run_id in doomed:
            time.sleep(random.uniform(0, 0.03))
            cancels[run_id] = api.cancel(run_id).status_code

    thread = threading.Thread(target=canceller)
    thread.start()
    deliver_concurrently(deps, lambda: len(cancels) == len(doomed)
                         and all_terminal(deps, run_ids)(), workers=3, observe=observe)
    thread.join()

    for n, run_id in enumerate(run_ids):
        status = api.status(run_id)
        if run_id in doomed and cancels[run_id] == 200:
            assert status == "cancelled"
            assert http_sink.calls(f"/pair/{n}") <= 1  # at most the step in flight
        else:
            assert status == "completed"
            assert http_sink.calls(f"/pair/{n}") == 1
    assert deps.slots.holders("pair") == set()
