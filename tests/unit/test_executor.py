"""The step executor on in-memory twins: ordering, outputs, halts, redelivery, retries."""
from __future__ import annotations

import pytest

from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.services.executor import process_step_message
from chalicelib.services.trigger import start_run
from tests.support.stack import catalog_from, memory_container, pump

PIPELINE = """
automations:
  - name: pipeline
    trigger: { type: manual }
    actions:
      - name: a
        type: data
        operator: set
        props: { value: { id: 42, tags: [x, y] } }
      - name: gate
        type: filter
        operator: continue
        props: { condition: "trigger.data.go" }
      - name: c
        type: data
        operator: set
        props: { value: { copied: "{{steps.a.id}}", text: "id={{steps.a.id}}" } }
"""


@pytest.fixture
def deps(tmp_path):
    return memory_container(catalog_from(tmp_path, PIPELINE))


def _start(deps, data):
    return start_run(deps, deps.catalog.get("pipeline"), "manual", data, actor="test")


def test_three_steps_complete_with_typed_template_values(deps):
    run = _start(deps, {"go": True})
    pump(deps)
    done, steps = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.COMPLETED
    assert [s.status for s in steps] == [StepStatus.COMPLETED] * 3
    assert steps[2].output == {"copied": 42, "text": "id=42"}
    assert all(isinstance(s.duration_ms, int) for s in steps)
    assert [(s.type, s.operator) for s in steps] == [("data", "set"), ("filter", "continue"),
                                                     ("data", "set")]
    assert done.started_at is not None and done.completed_at >= done.started_at


def test_filter_halt_completes_the_run_without_later_steps(deps):
    run = _start(deps, {"go": False})
    pump(deps)
    done, steps = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.COMPLETED
    assert [s.name for s in steps] == ["a", "gate"]
    assert steps[1].output == {"passed": False}


def test_the_step_message_is_a_wake_up_naming_only_the_run_and_its_token(deps):
    run = _start(deps, {"go": True})
    [(body, _)] = deps.step_queue.drain()
    assert set(body) == {"runId", "token"} and body["runId"] == run.id


def test_a_message_with_fields_older_messages_carried_is_still_accepted(deps):
    run = _start(deps, {"go": True})
    [(body, _)] = deps.step_queue.drain()
    process_step_message(deps, {**body, "stepIndex": 2, "unknown": {"x": 1}},
                         lambda: 900_000)
    done, steps = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.COMPLETED
    assert [s.status for s in steps] == [StepStatus.COMPLETED] * 3


def test_redelivered_messages_never_execute_a_recorded_step_twice(deps):
    run = _start(deps, {"go": True})
    first = deps.step_queue.drain()
    for body, _ in first * 3:
        process_step_message(deps, body, lambda: 900_000)
    done, steps = deps.repo.get_detail(run.id)
    assert done.status == RunStatus.COMPLETED
    assert all(s.attempt == 1 and len(s.attempts) == 1 for s in steps)


def test_low_remaining_time_hands_over_through_the_queue(deps):
    run = _start(deps, {"go": True})
    body, _ = deps.step_queue.drain()[0]
    process_step_message(deps, body, lambda: 1_000)
    assert deps.repo.get_run(run.id).status == RunStatus.RUNNING
    assert len(deps.step_queue.messages) == 1
    pump(deps)
    assert deps.repo.get_run(run.id).status == RunStatus.COMPLETED
