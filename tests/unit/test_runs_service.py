"""Runs use cases on the in-memory repository: list, detail, cancel."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters.memory import MemoryRunRepository
from chalicelib.domain.errors import InvalidTransition, RunNotFound, ValidationFailed
from chalicelib.domain.model import Event, Run, RunFilter, Step
from chalicelib.domain.statuses import TERMINAL, RunStatus, StepStatus
from chalicelib.services.runs import RunQuery, cancel_run, get_run_detail, list_runs
from tests.support import factories

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
ACTIONS = [
    {"name": "fetchUser", "type": "http", "operator": "get"},
    {"name": "check", "type": "filter", "operator": "continue"},
    {"name": "notify", "type": "email", "operator": "send"},
]


def make_run(**overrides) -> Run:
    return factories.make_run(**{"trigger_data": {"userId": 7}, "created_at": T0,
                                 "definition": {"name": "welcome-email", "actions": ACTIONS},
                                 **overrides})


@pytest.fixture
def repo() -> MemoryRunRepository:
    return MemoryRunRepository()


def seed(repo, count: int, **overrides) -> list[Run]:
    runs = [make_run(**overrides) for _ in range(count)]
    for run in runs:
        repo.create_run(run)
    return runs


def test_list_is_newest_first_then_id_desc(repo):
    older = seed(repo, 2, created_at=T0)
    newer = seed(repo, 1, created_at=T0 + timedelta(seconds=1))
    page = list_runs(repo, RunQuery())
    expected = newer + sorted(older, key=lambda run: run.id, reverse=True)
    assert [run.id for run in page.runs] == [run.id for run in expected]
    assert (page.page, page.total, page.total_pages, page.next_cursor) == (1, 3, 1, None)


def test_filters_and_total_agree(repo):
    seed(repo, 3, status=RunStatus.FAILED)
    seed(repo, 2, status=RunStatus.COMPLETED, automation_name="nightly", trigger_type="cron")
    filt = RunFilter(statuses=(RunStatus.FAILED, RunStatus.COMPLETED), automation_name="nightly")
    page = list_runs(repo, RunQuery(filter=filt, page_size=1))
    assert page.total == 2 and page.total_pages == 2 and len(page.runs) == 1
    assert page.runs[0].automation_name == "nightly"


def test_page_and_cursor_paging_visit_runs_sharing_a_timestamp_exactly_once(repo):
    ids = {run.id for run in seed(repo, 5)}
    by_page = [list_runs(repo, RunQuery(page_size=2, page=n)).runs for n in (1, 2, 3, 4)]
    assert sorted(run.id for chunk in by_page for run in chunk) == sorted(ids)
    assert by_page[3] == []
    seen, cursor = [], None
    while True:
        page = list_runs(repo, RunQuery(page_size=2, cursor=cursor))
        seen += [run.id for run in page.runs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert page.page == 3


def test_cursor_with_other_filters_is_rejected_naming_cursor(repo):
    seed(repo, 3)
    first = list_runs(repo, RunQuery(page_size=1))
    other = RunFilter(automation_name="nightly")
    with pytest.raises(ValidationFailed) as caught:
        list_runs(repo, RunQuery(filter=other, cursor=first.next_cursor))
    assert caught.value.details[0]["field"] == "cursor"


@pytest.mark.parametrize("cursor", ["garbage!", "e30", "eyJrIjogMX0"])
def test_malformed_cursor_is_rejected(repo, cursor):
    with pytest.raises(ValidationFailed, match="cursor"):
        list_runs(repo, RunQuery(cursor=cursor))


def test_page_with_cursor_is_rejected(repo):
    seed(repo, 2)
    cursor = list_runs(repo, RunQuery(page_size=1)).next_cursor
    with pytest.raises(ValidationFailed):
        list_runs(repo, RunQuery(page=2, cursor=cursor))


def test_detail_merges_recorded_steps_with_pending_ones(repo):
    run = make_run(status=RunStatus.RUNNING, started_at=T0)
    done = Step(index=0, name="fetchUser", type="http", operator="get",
                status=StepStatus.COMPLETED, attempt=1, output={"status": 200})
    repo.create_run(run, [done])
    detail = get_run_detail(repo, run.id).to_json()
    assert [(s["name"], s["status"]) for s in detail["steps"]] == [
        ("fetchUser", "completed"), ("check", "pending"), ("notify", "pending")]
    assert detail["steps"][0]["output"] == {"status": 200}
    assert detail["id"] == run.id and detail["events"] == []


def test_detail_of_a_terminal_run_shows_unreached_steps_skipped(repo):
    run = make_run(status=RunStatus.FAILED, started_at=T0, completed_at=T0)
    repo.create_run(run)
    steps = get_run_detail(repo, run.id).steps
    assert {step.status for step in steps} == {StepStatus.SKIPPED}


def test_detail_of_unknown_run_is_not_found(repo):
    with pytest.raises(RunNotFound):
        get_run_detail(repo, str(uuid.uuid4()))


@pytest.mark.parametrize("status", [RunStatus.PENDING, RunStatus.RUNNING])
def test_cancel_records_time_and_actor(repo, status):
    [run] = seed(repo, 1, status=status)
    now = T0 + timedelta(minutes=1)
    cancelled = cancel_run(repo, run.id, actor="token:abc", now=now)
    assert cancelled.status == RunStatus.CANCELLED and cancelled.cancelled_at == now
    stored = repo.get_run(run.id)
    assert stored.status == RunStatus.CANCELLED
    assert stored.events[-1] == Event(at=now, type="cancel", from_status=status.value,
                                      to_status="cancelled", actor="token:abc")


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_cancel_of_terminal_run_is_a_conflict_with_its_status(repo, status):
    [run] = seed(repo, 1, status=status)
    with pytest.raises(InvalidTransition) as caught:
        cancel_run(repo, run.id, actor="token:abc", now=T0)
    assert caught.value.status == status.value
    assert repo.get_run(run.id) == run.evolve(version=1)


def test_cancel_that_loses_a_race_is_a_conflict(repo):
    [run] = seed(repo, 1, status=RunStatus.RUNNING)

    class RacingRepo:
        """Lets the executor complete the run between our read and our write."""

        def __getattr__(self, name):
            return getattr(repo, name)

        def get_run(self, run_id):
            seen = repo.get_run(run_id)
            repo.update_run(seen.evolve(status=RunStatus.COMPLETED),
                            expected_status=RunStatus.RUNNING)
            return seen

    with pytest.raises(InvalidTransition) as caught:
        cancel_run(RacingRepo(), run.id, actor="token:abc", now=T0)
    assert caught.value.status == "completed"
    assert repo.get_run(run.id).status == RunStatus.COMPLETED


def test_concurrent_cancels_have_exactly_one_winner(repo):
    [run] = seed(repo, 1, status=RunStatus.RUNNING)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def cancel(n: int) -> None:
        barrier.wait()
        try:
            cancel_run(repo, run.id, actor=f"token:{n}", now=T0)
            outcomes.append("won")
        except InvalidTransition:
            outcomes.append("conflict")

    threads = [threading.Thread(target=cancel, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]
    assert [e.type for e in repo.get_run(run.id).events] == ["cancel"]
