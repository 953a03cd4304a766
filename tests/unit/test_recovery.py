"""Restart recovery: steps a stopped stack was executing are released and run again."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.services import lifecycle
from chalicelib.services.executor import process_step_message
from chalicelib.services.recovery import release_interrupted_steps
from chalicelib.services.trigger import start_run
from tests.support.stack import Clock, catalog_from, memory_container, pump

AUTOMATIONS = """
automations:
  - name: two
    trigger: { type: manual }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
      - { name: b, type: data, operator: set, props: { value: 2 } }
  - name: once
    trigger: { type: manual }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 }, timeout: 30000 }
  - name: sleepy
    trigger: { type: manual }
    actions:
      - { name: nap, type: delay, operator: wait, props: { ms: 600000 } }
"""


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(tmp_path, clock):
    return memory_container(catalog_from(tmp_path, AUTOMATIONS), clock=clock)


def _interrupted(deps, clock, name: str):
    """A run whose first step was claimed by an executor that then vanished."""
    run = start_run(deps, deps.catalog.get(name), "manual", {}, actor="test")
    deps.step_queue.drain()
    run = lifecycle.begin(deps, deps.repo.get_run(run.id))
    step = deps.repo.claim_step(
        run.id, _step(run, 0), token="gone", now=clock(),
        lease_until=clock() + timedelta(minutes=5))
    return run, step


def _step(run, index):
    from chalicelib.domain.model import Step

    action = run.definition["actions"][index]
    return Step(index=index, name=action["name"], type=action["type"],
                operator=action["operator"])


def test_a_step_claimed_by_a_vanished_executor_is_run_again_at_once(deps, clock):
    run, _ = _interrupted(deps, clock, "two")

    assert release_interrupted_steps(deps) == [(run.id, "a")]
    pump(deps)

    done, steps = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.COMPLETED
    assert steps[0].attempt == 2
    assert [a["errorType"] for a in steps[0].attempts] == ["Interrupted", None]


def test_without_the_release_the_live_lease_keeps_the_step_held(deps, clock):
    run, _ = _interrupted(deps, clock, "two")

    process_step_message(deps, {"runId": run.id, "stepIndex": 0}, lambda: 900_000)

    assert deps.repo.get_detail(run.id)[1][0].status == StepStatus.RUNNING
    assert deps.repo.get_run(run.id).status == RunStatus.RUNNING


def test_a_waiting_step_keeps_its_delayed_message_and_is_not_released(deps, clock):
    run = start_run(deps, deps.catalog.get("sleepy"), "manual", {}, actor="test")
    for body, _delay in deps.step_queue.drain():
        process_step_message(deps, body, lambda: 900_000)
    assert [delay for _body, delay in deps.step_queue.drain()] == [600]
    parked = deps.repo.get_detail(run.id)[1][0]
    assert parked.status == StepStatus.RUNNING and parked.next_attempt_at is not None

    assert release_interrupted_steps(deps) == []
    assert deps.step_queue.drain() == []  # its delayed message (drained above) is the wake-up


def test_a_step_recorded_meanwhile_is_left_alone(deps, clock):
    run, step = _interrupted(deps, clock, "once")
    deps.repo.write_step(run.id, step.evolve(status=StepStatus.COMPLETED, output=1),
                         expect={StepStatus.RUNNING}, token="gone")

    assert release_interrupted_steps(deps) == []
