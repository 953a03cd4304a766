"""Run.transition: the domain decides every status change (the table, the timestamps, the
audit event); the 8×8 cases cover every (from, to) pair."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.model import Event
from chalicelib.domain.statuses import TERMINAL, RunStatus

from tests.support.factories import BASE_TIME, make_run
from tests.support.transitions import LEGAL, PAIRS, pair_id

AT = BASE_TIME + timedelta(minutes=5)


def test_every_status_is_covered_by_the_pairs():
    assert len(PAIRS) == len(RunStatus) ** 2 == 64


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_transition_follows_the_table(pair):
    current, requested = pair
    run = make_run(status=current)

    if pair not in LEGAL:
        with pytest.raises(InvalidTransition) as caught:
            run.transition(requested, at=AT, actor="executor")
        assert (caught.value.run_id, caught.value.current, caught.value.requested) == (
            run.id, current.value, requested.value)
        return

    moved, event = run.transition(requested, at=AT, actor="executor")
    assert moved.status == requested
    assert event == Event(at=AT, type="transition", from_status=current.value,
                          to_status=requested.value, actor="executor")
    assert run.status == current  # the run itself is immutable


def test_terminal_statuses_are_exactly_those_with_no_way_out():
    assert {status for status in RunStatus
            if not any((status, to) in LEGAL for to in RunStatus)} == set(TERMINAL)


def test_admission_stamps_the_start_and_keeps_the_end_open():
    moved, _ = make_run().transition(RunStatus.RUNNING, at=AT, actor="executor",
                                     deadline_at=AT + timedelta(minutes=15))
    assert (moved.started_at, moved.completed_at, moved.deadline_at) == (
        AT, None, AT + timedelta(minutes=15))


@pytest.mark.parametrize("status", sorted(TERMINAL - {RunStatus.CANCELLED}))
def test_an_ending_stamps_completion_with_the_fields_given(status):
    running = make_run(status=RunStatus.RUNNING, started_at=BASE_TIME)
    moved, event = running.transition(status, at=AT, actor="sweeper", detail={"why": "x"},
                                      error={"message": "boom"}, attempt=3)
    assert (moved.completed_at, moved.cancelled_at, moved.error, moved.attempt) == (
        AT, None, {"message": "boom"}, 3)
    assert (event.actor, event.detail) == ("sweeper", {"why": "x"})


def test_a_cancel_stamps_cancel_and_completion_with_its_own_event_type():
    moved, event = make_run().transition(RunStatus.CANCELLED, at=AT, actor="token:t1",
                                         event_type="cancel")
    assert (moved.cancelled_at, moved.completed_at) == (AT, AT)
    assert event == Event(at=AT, type="cancel", from_status="pending", to_status="cancelled",
                          actor="token:t1")
