"""Runs API end to end through chalice.test.Client, on DynamoDB (moto)."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from app import app
from chalicelib.api.models import CancelOut, ErrorOut, RunDetailOut, RunListOut
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.model import Run, RunFilter, Step
from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.services.runs import cancel_run, encode_cursor
from chalicelib.services.tokens import create_token
from tests.support import factories

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
ACTIONS = [
    {"name": "fetchUser", "type": "http", "operator": "get"},
    {"name": "check", "type": "filter", "operator": "continue"},
    {"name": "notify", "type": "email", "operator": "send"},
]
RUNS = "/api/automations/runs"


def make_run(**overrides) -> Run:
    return factories.make_run(**{"trigger_data": {"userId": 7}, "created_at": T0,
                                 "definition": factories.definition("welcome-email", *ACTIONS),
                                 **overrides})


@pytest.fixture
def box(aws_container):
    return aws_container


@pytest.fixture
def drain(settings):
    """Bring the list counters up to date (the table's stream, polled on moto)."""
    from chalicelib.adapters.counters import StreamPoller

    return StreamPoller(settings).drain


@pytest.fixture
def seed(box):
    def create(count: int = 1, steps=(), **overrides) -> list[Run]:
        runs = [make_run(**overrides) for _ in range(count)]
        for run in runs:
            box.repo.create_run(run, steps)
        return runs

    return create


@pytest.fixture
def auth(box):
    """Authorization headers for a fresh token of the given role."""
    def headers(role: str = "operator") -> dict[str, str]:
        _, secret = create_token(box.tokens, role, T0)
        return {"Authorization": f"Bearer {secret}"}

    return headers


@pytest.fixture
def client():
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def get(client, auth):
    headers = auth("viewer")

    def call(path: str, **params):
        query = urlencode(params, doseq=True)
        return client.http.get(f"{path}?{query}" if query else path, headers=headers)

    return call


def listed(response) -> list[str]:
    assert response.status_code == 200, response.json_body
    RunListOut.model_validate(response.json_body)
    return [run["id"] for run in response.json_body["runs"]]


def test_list_answers_runs_newest_first_with_pagination(seed, drain, get):
    old = seed(1, created_at=T0)
    new = seed(1, created_at=T0 + timedelta(minutes=5))
    drain()
    response = get(RUNS)
    assert listed(response) == [new[0].id, old[0].id]
    assert response.json_body["pagination"] == {
        "page": 1, "pageSize": 20, "total": 2, "totalPages": 1, "nextCursor": None}
    assert response.json_body["runs"][0]["automationName"] == "welcome-email"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"automationName": "nightly"}, {"nightly-failed", "nightly-done"}),
        ({"status": "failed"}, {"nightly-failed", "hook-failed"}),
        ({"status": ["failed", "running"]}, {"nightly-failed", "hook-failed", "hook-running"}),
        ({"triggerType": "webhook"}, {"hook-failed", "hook-running"}),
        ({"automationName": "nightly", "status": "failed"}, {"nightly-failed"}),
        ({"triggerType": "webhook", "status": "running"}, {"hook-running"}),
        ({"since": "2026-03-01T12:02:00Z"}, {"hook-failed", "hook-running"}),
        ({"until": "2026-03-01T12:01:00Z"}, {"nightly-failed", "nightly-done"}),
        ({"since": "2026-03-01T12:01:00+00:00", "until": "2026-03-01T12:02:00"},
         {"nightly-done", "hook-failed"}),
        ({"automationName": "nobody"}, set()),
    ],
)
def test_every_filter_selects_matching_runs_with_an_exact_total(seed, drain, get, params,
                                                                expected):
    names = {}
    for minute, (label, automation, status, trigger) in enumerate([
        ("nightly-failed", "nightly", RunStatus.FAILED, "cron"),
        ("nightly-done", "nightly", RunStatus.COMPLETED, "cron"),
        ("hook-failed", "hook", RunStatus.FAILED, "webhook"),
        ("hook-running", "hook", RunStatus.RUNNING, "webhook"),
    ]):
        [run] = seed(automation_name=automation, status=status, trigger_type=trigger,
                     created_at=T0 + timedelta(minutes=minute))
        names[run.id] = label
    drain()
    response = get(RUNS, **params)
    assert {names[run_id] for run_id in listed(response)} == expected
    assert response.json_body["pagination"]["total"] == len(expected)


def test_replay_of_filter(seed, drain, get):
    [original] = seed(status=RunStatus.FAILED)
    replays = seed(2, replay_of=original.id, created_at=T0 + timedelta(seconds=1))
    drain()
    response = get(RUNS, replayOf=original.id)
    assert sorted(listed(response)) == sorted(run.id for run in replays)
    assert response.json_body["pagination"]["total"] == 2


def test_page_paging_through_runs_sharing_a_timestamp_visits_each_once(seed, drain, get):
    ids = {run.id for run in seed(5)}
    drain()
    seen = []
    for page in range(1, 7):
        response = get(RUNS, pageSize=1, page=page)
        seen += listed(response)
        assert response.json_body["pagination"]["totalPages"] == 5
    assert sorted(seen) == sorted(ids)


def test_cursor_paging_through_runs_sharing_a_timestamp_visits_each_once(seed, drain, get):
    ids = {run.id for run in seed(5, status=RunStatus.COMPLETED)}
    seed(2, status=RunStatus.FAILED)
    drain()
    seen, params = [], {"pageSize": 1, "status": "completed"}
    for _ in range(10):
        response = get(RUNS, **params)
        seen += listed(response)
        cursor = response.json_body["pagination"]["nextCursor"]
        if cursor is None:
            break
        params["cursor"] = cursor
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert response.json_body["pagination"]["page"] == 5


def test_cursor_reused_with_other_filters_is_rejected(seed, drain, get):
    seed(3)
    drain()
    cursor = get(RUNS, pageSize=1).json_body["pagination"]["nextCursor"]
    response = get(RUNS, pageSize=1, cursor=cursor, status="failed")
    assert response.status_code == 400
    assert [d["field"] for d in response.json_body["details"]] == ["cursor"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": 101}, "pageSize"),
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
        ({"page": 0}, "page"),
        ({"status": "bogus"}, "status"),
        ({"status": ["failed", "bogus"]}, "status"),
        ({"triggerType": "email"}, "triggerType"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45T99:00:00Z"}, "until"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until"),
        ({"page": 2, "cursor": "abc"}, "cursor"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"statuses": "failed"}, "statuses"),
        ({"since": "9999-12-31T23:59:59-01:00"}, "since"),  # past datetime.max in UTC
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before datetime.min in UTC
        ({"until": "0999-12-31T00:00:00Z"}, "until"),  # 3-digit years break text order
        ({"since": "1969-12-31T23:59:59Z"}, "since"),
        ({"page": 10**30}, "page"),
        ({"page": 501, "pageSize": 20}, "page"),
        ({"page": 101, "pageSize": 100}, "page"),
    ],
)
def test_invalid_list_query_is_a_400_naming_the_field(get, params, field):
    response = get(RUNS, **params)
    assert response.status_code == 400
    body = ErrorOut.model_validate(response.json_body)
    assert body.code == "VALIDATION_ERROR"
    assert [detail.field for detail in body.details] == [field]
    assert field in body.message


def test_deepest_page_within_reach_is_answered(seed, drain, get):
    seed(2)
    drain()
    response = get(RUNS, page=100, pageSize=100)
    assert listed(response) == [] and response.json_body["pagination"]["total"] == 2
    message = get(RUNS, page=101, pageSize=100).json_body["details"][0]["message"]
    assert "nextCursor" in message


def test_since_and_until_at_the_edges_of_the_allowed_years_are_answered(seed, drain, get):
    [run] = seed()
    drain()
    assert listed(get(RUNS, since="1970-01-01T00:00:00Z", until="9999-12-31T23:59:59Z")) == [
        run.id]


def test_cursor_older_than_since_answers_an_empty_page(box, seed, drain, get):
    seed(3)
    drain()
    since = T0 + timedelta(minutes=1)
    old = make_run(created_at=T0 - timedelta(days=1))  # only in the cursor: never stored
    cursor = encode_cursor(old, RunFilter(since=since), page=2, key=box.settings.cursor_key)
    response = get(RUNS, since=since.isoformat(), cursor=cursor)
    assert listed(response) == []
    assert response.json_body["pagination"]["nextCursor"] is None


def test_invalid_status_names_the_allowed_values(get):
    response = get(RUNS, status="bogus")
    [detail] = response.json_body["details"]
    assert detail["allowed"] == [
        "pending", "running", "completed", "completed-with-errors", "failed", "timed-out",
        "exhausted", "cancelled"]


def test_detail_shows_recorded_and_pending_steps_and_events(seed, get):
    recorded = Step(index=0, name="fetchUser", type="http", operator="get",
                    status=StepStatus.COMPLETED, started_at=T0, completed_at=T0 +
                    timedelta(milliseconds=250), attempt=1, output={"status": 200})
    [run] = seed(steps=[recorded], status=RunStatus.RUNNING, started_at=T0)
    response = get(f"{RUNS}/{run.id}")
    assert response.status_code == 200
    body = RunDetailOut.model_validate(response.json_body)
    assert body.id == run.id and body.status == RunStatus.RUNNING
    assert [(s.name, s.status, s.type, s.operator) for s in body.steps] == [
        ("fetchUser", StepStatus.COMPLETED, "http", "get"),
        ("check", StepStatus.PENDING, "filter", "continue"),
        ("notify", StepStatus.PENDING, "email", "send"),
    ]
    assert body.steps[0].output == {"status": 200} and body.steps[0].durationMs == 250


def test_detail_of_unknown_run_is_a_404_envelope(get):
    response = get(f"{RUNS}/{uuid.uuid4()}")
    assert response.status_code == 404
    assert ErrorOut.model_validate(response.json_body).code == "NOT_FOUND"


def test_cancel_of_running_run_answers_cancelled_at_and_records_the_actor(seed, client, box):
    [run] = seed(status=RunStatus.RUNNING, started_at=T0)
    token_id, secret = create_token(box.tokens, "operator", T0)
    response = client.http.post(f"{RUNS}/{run.id}/cancel",
                                headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    body = CancelOut.model_validate(response.json_body)
    assert body.id == run.id and body.status == "cancelled"
    detail = client.http.get(f"{RUNS}/{run.id}", headers={"Authorization": f"Bearer {secret}"})
    assert detail.json_body["cancelledAt"] == response.json_body["cancelledAt"]
    [event] = detail.json_body["events"]
    assert (event["type"], event["from"], event["to"], event["actor"]) == (
        "cancel", "running", "cancelled", f"token:{token_id}")
    assert {step["status"] for step in detail.json_body["steps"]} == {"skipped"}


def test_cancel_of_completed_run_is_a_409_and_leaves_it_unchanged(seed, client, auth, box):
    [run] = seed(status=RunStatus.COMPLETED, started_at=T0, completed_at=T0)
    before = box.repo.get_run(run.id)
    response = client.http.post(f"{RUNS}/{run.id}/cancel", headers=auth("operator"))
    assert response.status_code == 409
    body = ErrorOut.model_validate(response.json_body)
    assert body.status == "completed" and body.code == "INVALID_TRANSITION"
    assert box.repo.get_run(run.id) == before


def test_cancel_of_unknown_run_is_a_404(client, auth):
    response = client.http.post(f"{RUNS}/{uuid.uuid4()}/cancel", headers=auth("admin"))
    assert response.status_code == 404


def test_concurrent_cancels_have_exactly_one_winner(seed, box):
    [run] = seed(status=RunStatus.RUNNING, started_at=T0)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def cancel(n: int) -> None:
        barrier.wait()
        try:
            cancel_run(box.repo, run.id, actor=f"token:{n}", now=T0)
            outcomes.append("won")
        except InvalidTransition as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=cancel, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["cancelled"] * 7 + ["won"]
    assert [event.type for event in box.repo.get_run(run.id).events] == ["cancel"]
