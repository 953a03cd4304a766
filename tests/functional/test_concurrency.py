"""Concurrency limits end to end: triggers through chalice.test.Client, the real step handler
fed from the moto step queue (several worker threads), slots in DynamoDB on moto."""
from __future__ import annotations

import threading

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.dynamo_slots import DynamoSlots
from chalicelib.domain.clock import ms_between, parse_iso
from chalicelib.domain.statuses import TERMINAL, RunStatus
from tests.support.drive import (
    Api, all_terminal, deliver_concurrently, deliver_one, drain_queue,
)

AUTOMATIONS = """
automations:
  - name: one-at-a-time
    trigger: { type: manual }
    concurrency: { limit: 1 }
    actions:
      - name: call
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/one/{{trigger.data.n}}" }
  - name: two-at-a-time
    trigger: { type: manual }
    concurrency: { limit: 2 }
    actions:
      - name: call
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/two/{{trigger.data.n}}" }
      - name: note
        type: data
        operator: set
        props: { value: "{{trigger.data.n}}" }
"""


class AdmissionLog:
    """The real slots, remembering the order in which runs first got a slot."""

    def __init__(self, slots) -> None:
        self._slots = slots
        self._lock = threading.Lock()
        self.order: list[str] = []

    def acquire(self, automation: str, run_id: str, limit: int) -> bool:
        granted = self._slots.acquire(automation, run_id, limit)
        with self._lock:
            if granted and run_id not in self.order:
                self.order.append(run_id)
        return granted

    def release(self, automation: str, run_id: str) -> None:
        self._slots.release(automation, run_id)

    def holders(self, automation: str) -> set[str]:
        return self._slots.holders(automation)


@pytest.fixture
def admissions(aws, settings):
    return AdmissionLog(DynamoSlots(settings))


@pytest.fixture
def deps(wire, admissions):
    return wire(AUTOMATIONS, slots=admissions)


@pytest.fixture
def api(deps):
    with Client(app) as client:
        yield Api(client, deps)


def test_with_limit_one_the_second_of_two_simultaneous_triggers_waits_for_the_first(
        api, deps, http_sink):
    barrier = threading.Barrier(2)
    created: dict[int, str] = {}

    def fire(n: int) -> None:
        barrier.wait()
        created[n] = api.trigger("one-at-a-time", {"n": n})

    threads = [threading.Thread(target=fire, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [first] = deps.slots.holders("one-at-a-time")
    [second] = set(created.values()) - {first}
    second_n = next(n for n, run_id in created.items() if run_id == second)

    while deps.repo.get_run(first).status not in TERMINAL:
        assert api.detail(second)["status"] == "pending"
        assert http_sink.calls(f"/one/{second_n}") == 0
        deliver_one(deps)
    drain_queue(deps)

    one, two = api.detail(first), api.detail(second)
    assert (one["status"], two["status"]) == ("completed", "completed")
    assert http_sink.calls(f"/one/{second_n}") == 1
    assert parse_iso(two["startedAt"]) >= parse_iso(one["completedAt"])
    # queuedMs is the wait from creation to admission, durationMs runs from admission on.
    created_at, started_at, completed_at = (parse_iso(two[k]) for k in (
        "createdAt", "startedAt", "completedAt"))
    assert abs(two["queuedMs"] - ms_between(created_at, started_at)) <= 1
    assert abs(two["durationMs"] - ms_between(started_at, completed_at)) <= 1
    assert two["queuedMs"] >= one["durationMs"] - 1  # it waited the whole first run out
    assert deps.slots.holders("one-at-a-time") == set()


def test_simultaneous_requests_each_see_their_own_body(api, deps):
    """The local server and the test client handle requests on several threads of one
    process; each handler must read its own request, never another thread's."""
    barrier = threading.Barrier(8)
    created: dict[int, str] = {}

    def fire(n: int) -> None:
        barrier.wait()
        created[n] = api.trigger("two-at-a-time", {"n": n})

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(created.values())) == 8
    assert {n: deps.repo.get_run(run_id).trigger_data for n, run_id in created.items()} == {
        n: {"n": n} for n in range(8)}


def test_ten_runs_with_limit_two_never_run_more_than_two_and_are_admitted_in_creation_order(
        api, deps, http_sink, admissions):
    http_sink.respond("/two/0", delay_s=0.05)  # a slow first run, so the others overtake it
    run_ids = [api.trigger("two-at-a-time", {"n": n}) for n in range(10)]
    assert admissions.order == run_ids[:2]
    peak: list[int] = []

    def observe() -> None:
        running = api.listed(automationName="two-at-a-time", status="running")
        held = deps.slots.holders("two-at-a-time")
        peak.append(len(running))
        assert len(running) <= 2, [run["id"] for run in running]
        assert len(held) <= 2, held

    deliver_concurrently(deps, all_terminal(deps, run_ids), workers=4, observe=observe)

    details = [api.detail(run_id) for run_id in run_ids]
    assert [d["status"] for d in details] == ["completed"] * 10
    assert all(http_sink.calls(f"/two/{n}") == 1 for n in range(10))
    by_creation = [d["id"] for d in sorted(details, key=lambda d: (d["createdAt"], d["id"]))]
    assert by_creation == run_ids
    assert admissions.order == run_ids  # FIFO: no run got a slot before an older one
    for k, detail in enumerate(details[2:], start=2):
        # With two slots, run k starts only after all but one of the runs before it ended.
        ended_before = [d for d in details[:k] if d["completedAt"] <= detail["startedAt"]]
        assert len(ended_before) >= k - 1, (k, detail["startedAt"])
    assert max(peak) <= 2
    assert deps.slots.holders("two-at-a-time") == set()


def test_a_run_ending_in_failure_also_frees_its_slot(api, deps, http_sink):
    http_sink.respond("/one/0", status=400)
    failing = api.trigger("one-at-a-time", {"n": 0})
    waiting = api.trigger("one-at-a-time", {"n": 1})

    drain_queue(deps)

    assert api.status(failing) == RunStatus.FAILED.value
    assert api.status(waiting) == RunStatus.COMPLETED.value
    assert deps.slots.holders("one-at-a-time") == set()


def test_each_admitted_run_gets_exactly_one_step_message(api, deps, http_sink):
    run_ids = [api.trigger("one-at-a-time", {"n": n}) for n in range(5)]

    delivered = drain_queue(deps)

    assert [api.status(run_id) for run_id in run_ids] == ["completed"] * 5
    # A release admits the next run without re-sending the messages of runs already
    # admitted, so endings do not multiply step messages.
    assert sorted(body["runId"] for body in delivered) == sorted(run_ids)
