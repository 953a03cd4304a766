"""Retry now (issue 17) on in-memory twins with a test clock: a step parked for 10 minutes is
woken and runs at once, the original delayed message then does nothing, repeats are
idempotent, anything not waiting answers 409 with the step's status; the waiting state is
visible on the run while it lasts."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.actions.base import Output, Props
from chalicelib.actions.registry import ActionSpec
from chalicelib.domain.errors import Forbidden, StepNotFound, StepNotWaiting
from chalicelib.domain.model import RunFilter
from chalicelib.domain.retry import ActionError
from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.services.executor import process_step_message
from chalicelib.services.retry_now import retry_now
from chalicelib.services.tokens import Role
from chalicelib.services.trigger import start_run
from tests.support.stack import Clock, catalog_from, memory_container

AUTOMATIONS = """
automations:
  - name: charge
    trigger: { type: manual }
    actions:
      - name: pay
        type: test
        operator: flaky
        retry: { maxAttempts: 3, delayMs: 60000, strategy: fixed }
      - { name: after, type: data, operator: set, props: { value: done } }
  - name: pause
    trigger: { type: manual }
    actions:
      - { name: hold, type: delay, operator: wait, props: { ms: 600000 } }
      - { name: after, type: data, operator: set, props: { value: done } }
"""
TEN_MINUTES = timedelta(minutes=10)


class FlakyProps(Props):
    pass


class FlakyOutput(Output):
    calls: int


class Flaky:
    """Fails (retryably) until `healthy`, counting every call."""

    def __init__(self) -> None:
        self.calls = 0
        self.healthy = False

    def __call__(self, props, ctx):
        self.calls += 1
        if not self.healthy:
            raise ActionError("partner API down", "HttpError", retryable=True)
        return {"calls": self.calls}


@pytest.fixture
def flaky():
    return Flaky()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(tmp_path, flaky, clock):
    from chalicelib.actions.registry import default_registry

    registry = default_registry()
    registry.register(ActionSpec("test", "flaky", FlakyProps, flaky, FlakyOutput))
    catalog = catalog_from_registry(tmp_path, registry)
    return memory_container(catalog, actions=registry, clock=clock)


def catalog_from_registry(tmp_path, registry):
    from chalicelib.domain.definitions import load_catalog

    folder = tmp_path / "automations"
    folder.mkdir()
    (folder / "test.yaml").write_text(AUTOMATIONS)
    return load_catalog(folder, registry)


def _deliver(deps, messages):
    for body, _delay in messages:
        process_step_message(deps, body, lambda: 900_000)


def _parked(deps, name, data=None):
    """Start a run and deliver until its first step is parked; returns (run id, its
    delayed wake-up messages)."""
    run = start_run(deps, deps.catalog.get(name), "manual", data or {}, actor="test")
    _deliver(deps, deps.step_queue.drain())  # runs the first attempt, which parks
    wake_ups = deps.step_queue.drain()
    assert [delay for _, delay in wake_ups] == [600 if name == "pause" else 60]
    return run.id, wake_ups


def _step(deps, run_id, index=0):
    return deps.repo.get_detail(run_id)[1][index]


def test_a_waiting_run_says_what_it_waits_for(deps, clock):
    run_id, _ = _parked(deps, "charge")
    run = deps.repo.get_run(run_id)
    assert run.status == RunStatus.RUNNING  # no ninth status
    assert run.to_json()["waiting"] == {
        "kind": "retry", "step": "pay", "stepIndex": 0, "attempt": 2,
        "waitingUntil": run.to_json()["waitingUntil"]}
    assert run.waiting.until == clock.now + timedelta(minutes=1)
    listed = deps.repo.list_runs(RunFilter(waiting="retry"), limit=10).runs
    assert [r.id for r in listed] == [run_id]
    assert deps.repo.list_runs(RunFilter(waiting="delay"), limit=10).runs == []


def test_retry_now_wakes_a_step_parked_for_ten_minutes_and_it_runs_at_once(
        deps, flaky, clock):
    run_id, wake_ups = _parked(deps, "pause")
    parked = _step(deps, run_id)
    assert parked.next_attempt_at == clock.now + TEN_MINUTES

    woken = retry_now(deps, run_id, "hold", actor="token:admin", role=Role.ADMIN)
    # Delivered at once: the clock has not moved (the wake-up is undelayed).
    sent = deps.step_queue.drain()
    assert [delay for _, delay in sent] == [0]
    _deliver(deps, sent)

    run, steps = deps.repo.get_detail(run_id)
    assert (woken.kind, woken.step, woken.repeated) == ("delay", "hold", False)
    assert run.status == RunStatus.COMPLETED
    assert steps[0].status == StepStatus.COMPLETED
    assert steps[0].output == {"waitedMs": 0}
    assert run.waiting is None
    event = next(e for e in run.events if e.type == "retry-now")
    assert (event.actor, event.detail["step"], event.detail["kind"]) == (
        "token:admin", "hold", "delay")

    # Ten minutes later the original delayed message arrives: it does nothing.
    clock.advance(minutes=10)
    before = deps.repo.get_detail(run_id)
    _deliver(deps, wake_ups)
    assert deps.repo.get_detail(run_id) == before
    assert deps.step_queue.drain() == []


def test_the_original_wake_up_arriving_first_does_not_run_the_woken_step(deps, flaky, clock):
    run_id, wake_ups = _parked(deps, "charge")
    flaky.healthy = True
    retry_now(deps, run_id, "pay", actor="token:op", role=Role.OPERATOR)
    woken_message = deps.step_queue.drain()

    clock.advance(minutes=1)  # the original message is due now, and is delivered first
    _deliver(deps, wake_ups)
    assert flaky.calls == 1 and deps.step_queue.drain() == []
    assert _step(deps, run_id).status == StepStatus.RUNNING

    _deliver(deps, woken_message)
    run, steps = deps.repo.get_detail(run_id)
    assert flaky.calls == 2
    assert run.status == RunStatus.COMPLETED
    assert (steps[0].attempt, steps[0].output) == (2, {"calls": 2})


def test_a_woken_retry_that_fails_again_parks_for_its_next_backoff(deps, flaky, clock):
    run_id, wake_ups = _parked(deps, "charge")
    retry_now(deps, run_id, "pay", actor="token:op", role=Role.OPERATOR)
    _deliver(deps, deps.step_queue.drain())
    assert flaky.calls == 2
    next_wake = deps.step_queue.drain()
    assert [delay for _, delay in next_wake] == [60]
    run = deps.repo.get_run(run_id)
    assert (run.waiting.kind, run.waiting.attempt) == ("retry", 3)

    _deliver(deps, wake_ups)  # the first wait's message: revoked
    assert flaky.calls == 2
    flaky.healthy = True
    clock.advance(minutes=1)
    _deliver(deps, next_wake)
    assert deps.repo.get_run(run_id).status == RunStatus.COMPLETED
    assert flaky.calls == 3


def test_retry_now_is_idempotent(deps, flaky):
    run_id, _ = _parked(deps, "charge")
    first = retry_now(deps, run_id, "pay", actor="token:op", role=Role.OPERATOR)
    again = retry_now(deps, run_id, "pay", actor="token:op", role=Role.OPERATOR)
    assert (first.repeated, again.repeated, again.attempt) == (False, True, first.attempt)
    messages = deps.step_queue.drain()
    assert len(messages) == 2  # the repeat sends the same wake-up again (the first may be lost)
    assert messages[0][0]["token"] == messages[1][0]["token"]
    flaky.healthy = True
    _deliver(deps, messages)
    run = deps.repo.get_run(run_id)
    assert flaky.calls == 2 and run.status == RunStatus.COMPLETED
    assert [e.type for e in run.events].count("retry-now") == 1


def test_a_step_not_waiting_answers_409_with_its_status(deps, flaky):
    run_id, _ = _parked(deps, "charge")
    with pytest.raises(StepNotWaiting) as pending:
        retry_now(deps, run_id, "after", actor="token:op", role=Role.OPERATOR)
    assert pending.value.status == "pending"
    flaky.healthy = True
    retry_now(deps, run_id, "pay", actor="token:op", role=Role.OPERATOR)
    _deliver(deps, deps.step_queue.drain())
    with pytest.raises(StepNotWaiting) as completed:
        retry_now(deps, run_id, "pay", actor="token:op", role=Role.OPERATOR)
    assert completed.value.status == "completed"
    with pytest.raises(StepNotFound):
        retry_now(deps, run_id, "nope", actor="token:op", role=Role.OPERATOR)


def test_waking_a_delay_needs_the_admin_role(deps):
    run_id, _ = _parked(deps, "pause")
    with pytest.raises(Forbidden):
        retry_now(deps, run_id, "hold", actor="token:op", role=Role.OPERATOR)
    assert _step(deps, run_id).woken_at is None


def test_the_original_wake_up_does_not_run_later_steps_of_the_woken_run(deps, flaky, clock):
    """The woken invocation completes the step and hands the next one over (low remaining
    time); the original wake-up, arriving before the handover, must not take it."""
    run_id, wake_ups = _parked(deps, "charge")
    flaky.healthy = True
    retry_now(deps, run_id, "pay", actor="token:op", role=Role.OPERATOR)
    remaining = iter([900_000])
    for body, _ in deps.step_queue.drain():
        process_step_message(deps, body, lambda: next(remaining, 1_000))
    handover = deps.step_queue.drain()
    assert len(handover) == 1 and _step(deps, run_id).status == StepStatus.COMPLETED

    clock.advance(minutes=1)
    _deliver(deps, wake_ups)
    run, steps = deps.repo.get_detail(run_id)
    assert len(steps) == 1 and run.status == RunStatus.RUNNING  # `after` untouched
    assert deps.step_queue.drain() == []

    _deliver(deps, handover)
    assert deps.repo.get_run(run_id).status == RunStatus.COMPLETED
