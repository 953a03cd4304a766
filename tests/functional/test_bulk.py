"""Bulk replay and cancel end to end on moto: the API, the step worker's batch messages (as
Lambda's SQS mapping delivers them) and a sink that fails for a while, then heals."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from chalicelib.bootstrap import Container, use_container
from chalicelib.domain.statuses import TERMINAL
from chalicelib.faults import Faults
from chalicelib.local.pollers import failed_message_ids, lambda_context, sqs_event
from tests.support.apps import bearer, post
from chalicelib.local.single_machine import create_queues
from tests.support.sqs import step_handler
from tests.support.stack import catalog_from

AUTOMATIONS = """
automations:
  - name: sync
    trigger: { type: manual }
    actions:
      - name: prepare
        type: data
        operator: set
        props: { value: { n: "{{trigger.data.n}}" } }
      - name: push
        type: http
        operator: post
        props: { url: "{{secrets.SINK}}/sync", body: { n: "{{trigger.data.n}}" } }
  - name: slow
    trigger: { type: manual }
    concurrency: { limit: 2 }
    actions:
      - { name: nap, type: delay, operator: wait, props: { ms: 600000 } }
"""
RATE = 50  # runs a batch message handles (BULK_RATE_PER_S)


class CrashAt(Faults):
    """The worker dies at `point` on its `nth` reach (once each)."""

    def __init__(self, **nth: int) -> None:
        self.nth = {point.replace("_", ".", 1): n for point, n in nth.items()}
        self.reached: Counter[str] = Counter()
        self.crashes: list[str] = []

    def point(self, name: str) -> None:
        self.reached[name] += 1
        if self.reached[name] == self.nth.get(name):
            self.crashes.append(name)
            raise Crashed(name)


class Crashed(BaseException):
    """The Lambda died (nothing after this point ran; its message comes back)."""


@pytest.fixture
def deps(request, wire, settings, tmp_path, http_sink, monkeypatch):
    """On moto (the AWS adapters), or with `@pytest.mark.sqlite` on the SQLite stores and the
    local durable queue (as `make run`): the incident tests, which move 300+ runs."""
    if request.node.get_closest_marker("sqlite") is None:
        built = wire(AUTOMATIONS, faults=CrashAt())
        built.settings = replace(built.settings, bulk_rate_per_s=RATE)
        return built
    local = replace(settings, backend="sqlite", runs_db=str(tmp_path / "runs.db"),
                    allow_private_http=True, bulk_rate_per_s=RATE)
    create_queues(local)
    built = Container(settings=local, overrides={
        "catalog": catalog_from(tmp_path, AUTOMATIONS), "faults": CrashAt()})
    use_container(built)
    return built


def drain(deps, *, until=lambda: False, timeout_s: float = 120) -> None:
    """Deliver step-queue messages to the real handler until the queue stays empty (and
    `until()`); a crashed delivery's message is handed back as SQS would after the crash."""
    import time

    handler, queue = step_handler(), deps.step_queue
    deadline, idle = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        messages = queue.receive(max_messages=10, wait_seconds=0)
        if not messages:
            idle += 1
            if idle > 30 and until():  # 1.5 s quiet: delayed batch messages are 1 s
                return
            time.sleep(0.05)
            continue
        idle = 0
        for message in messages:
            event = sqs_event([message], queue.arn, deps.settings.region)
            try:
                failed = failed_message_ids(handler(event, lambda_context("execute_steps",
                                                                          900)()))
            except Crashed:
                queue.change_visibility(message["ReceiptHandle"], 0)
                continue
            if message["MessageId"] in failed:
                queue.change_visibility(message["ReceiptHandle"], 0)
            else:
                queue.delete(message["ReceiptHandle"])
    raise AssertionError("the queue did not settle before the timeout")


def trigger(client, headers, name, n):
    response = post(client, f"/api/automations/{name}/trigger", headers, {"triggerData": {"n": n}})
    assert response.status_code == 202, response.body
    return response.json_body["id"]


def batch(client, deps, batch_id):
    response = client.http.get(f"/api/automations/batches/{batch_id}",
                               headers=bearer(deps, "viewer"))
    assert response.status_code == 200, response.body
    return response.json_body


def terminal(deps, run_ids) -> bool:
    return all(deps.repo.get_run(run_id).status in TERMINAL for run_id in run_ids)


@pytest.fixture
def incident(client, deps, http_sink):
    """200 runs of `sync`: 40 reach a healthy sink, 120 meet it failing (503), 40 more after
    it healed. Returns (ids of all runs, ids of the failed ones)."""
    operator = bearer(deps, "operator")
    runs, failed = [], []
    http_sink.respond("/sync", 200, {"ok": True})
    for phase, (count, status) in enumerate(((40, 200), (120, 503), (40, 200))):
        http_sink.respond("/sync", status, {"phase": phase})
        ids = [trigger(client, operator, "sync", len(runs) + i) for i in range(count)]
        drain(deps, until=lambda: terminal(deps, ids))
        runs += ids
        if status == 503:
            failed = ids
    statuses = Counter(deps.repo.get_run(run_id).status.value for run_id in runs)
    assert statuses == {"completed": 80, "failed": 120}
    return runs, failed


@pytest.mark.sqlite
def test_incident_recovered_by_one_bulk_replay_sent_twice_with_worker_crashes(
        client, deps, http_sink, incident):
    runs, failed = incident
    http_sink.respond("/sync", 200, {"ok": True})  # the sink healed
    operator = {**bearer(deps, "operator"), "Idempotency-Key": "incident-42"}
    deps.faults.nth = {"bulk.after_run": 70, "bulk.before_advance": 2}
    body = {"automationName": "sync", "status": ["failed"]}

    first = post(client, "/api/automations/runs/replay", operator, body)
    again = post(client, "/api/automations/runs/replay", operator, body)
    other = post(client, "/api/automations/runs/replay", bearer(deps, "operator"), body)

    assert first.status_code == again.status_code == other.status_code == 202
    batch_id = first.json_body["batchId"]
    assert first.headers["Location"] == f"/api/automations/batches/{batch_id}"
    assert first.json_body["matched"] == 120 and not first.json_body["deduplicated"]
    assert again.json_body["batchId"] == batch_id and again.json_body["deduplicated"]
    assert other.json_body["batchId"] != batch_id
    drain(deps, until=lambda: batch(client, deps, batch_id)["done"]
          and batch(client, deps, other.json_body["batchId"])["done"])
    assert deps.faults.crashes == ["bulk.after_run", "bulk.before_advance"]

    progress, second = batch(client, deps, batch_id), batch(client, deps, other.json_body["batchId"])
    # The two batches ran side by side: together they replayed each failed run once.
    assert progress["replayed"] + second["replayed"] == 120
    assert progress["skipped"] + second["skipped"] == 120
    assert progress["failed"] == second["failed"] == 0
    assert progress["matched"] == progress["processed"] == 120
    created = progress["createdRunIds"] + second["createdRunIds"]
    assert len(set(created)) == 120
    drain(deps, until=lambda: terminal(deps, created))
    replays = [deps.repo.get_run(run_id) for run_id in created]
    assert sorted(r.replay_of for r in replays) == sorted(failed)
    assert {r.status.value for r in replays} == {"completed"}
    # The sink saw every failed run's payload exactly once after it healed.
    healed = Counter(r.json()["n"] for r in http_sink.requests_to("/sync")[200:])
    assert sorted(healed) == sorted(range(40, 160)) and set(healed.values()) == {1}
    # Every original's audit trail names the batch that replayed it.
    owner = {run_id: batch_id for run_id in progress["createdRunIds"]} | {
        run_id: other.json_body["batchId"] for run_id in second["createdRunIds"]}
    for replay in replays:
        events = [e for e in deps.repo.get_run(replay.replay_of).events if e.type == "replayed"]
        assert [e.detail for e in events] == [{"replayId": replay.id,
                                               "batchId": owner[replay.id]}]


@pytest.mark.sqlite
def test_a_later_batch_skips_replayed_runs_unless_again(client, deps, http_sink, incident):
    runs, failed = incident
    http_sink.respond("/sync", 200, {"ok": True})
    operator = bearer(deps, "operator")
    body = {"automationName": "sync", "status": ["failed"], "limit": 30}
    first = post(client, "/api/automations/runs/replay", operator, body).json_body["batchId"]
    drain(deps, until=lambda: batch(client, deps, first)["done"])
    later = post(client, "/api/automations/runs/replay", operator, body).json_body["batchId"]
    forced = post(client, "/api/automations/runs/replay", operator,
                  {**body, "again": True, "limit": 5}).json_body["batchId"]
    drain(deps, until=lambda: batch(client, deps, later)["done"]
          and batch(client, deps, forced)["done"])

    assert batch(client, deps, first)["replayed"] == 30
    assert (batch(client, deps, later)["replayed"], batch(client, deps, later)["skipped"]) == (0, 30)
    assert batch(client, deps, forced)["replayed"] == 5


@pytest.mark.sqlite
def test_dry_run_counts_and_changes_nothing(client, deps, http_sink, incident):
    runs, failed = incident
    sink_calls = http_sink.calls("/sync")
    before = {run_id: deps.repo.get_run(run_id) for run_id in runs}
    queued = sum(deps.step_queue.counts().values())  # visible, in flight or delayed

    response = post(client, "/api/automations/runs/replay", bearer(deps, "operator"),
                    {"automationName": "sync", "status": ["failed"], "dryRun": True})

    assert response.status_code == 200
    body = response.json_body
    assert body["dryRun"] is True and body["matched"] == body["total"] == 120
    # Newest first in the list order (createdAt desc, then id desc: runs created in the same
    # millisecond are ordered by id, not by the order they were triggered in).
    newest = sorted(failed, key=lambda run_id: before[run_id].sort_key, reverse=True)
    assert body["firstIds"] == newest[:20]
    assert sum(deps.step_queue.counts().values()) == queued  # no batch message sent
    assert {run_id: deps.repo.get_run(run_id) for run_id in runs} == before
    assert http_sink.calls("/sync") == sink_calls


def test_bulk_cancel_stops_pending_and_running_runs_only(client, deps):
    operator = bearer(deps, "operator")
    slow = [trigger(client, operator, "slow", n) for n in range(5)]  # limit 2: 3 wait
    drain(deps, until=lambda: True)
    statuses = Counter(deps.repo.get_run(run_id).status.value for run_id in slow)
    assert statuses == {"running": 2, "pending": 3}
    done = trigger(client, operator, "sync", 1)
    drain(deps, until=lambda: terminal(deps, [done]))

    preview = post(client, "/api/automations/runs/cancel", operator,
                   {"since": "2000-01-01T00:00:00Z", "dryRun": True}).json_body
    assert preview["matched"] == 6
    assert Counter(deps.repo.get_run(r).status.value for r in slow) == statuses
    started = post(client, "/api/automations/runs/cancel", operator,
                   {"since": "2000-01-01T00:00:00Z"})
    assert started.status_code == 202
    batch_id = started.json_body["batchId"]
    drain(deps, until=lambda: batch(client, deps, batch_id)["done"])

    progress = batch(client, deps, batch_id)
    assert (progress["cancelled"], progress["skipped"], progress["failed"]) == (5, 1, 0)
    assert sorted(progress["cancelledRunIds"]) == sorted(slow)
    assert {deps.repo.get_run(r).status.value for r in slow} == {"cancelled"}
    assert deps.repo.get_run(done).status.value == "completed"
    for run_id in slow:
        cancel = [e for e in deps.repo.get_run(run_id).events if e.type == "cancel"]
        assert [e.detail for e in cancel] == [{"batchId": batch_id}]


def test_bulk_input_is_checked(client, deps):
    operator = bearer(deps, "operator")
    cases = {
        "an empty filter": ({"limit": 3}, "filter"),
        "an unknown status": ({"status": ["lost"]}, "status"),
        "a bad since": ({"since": "yesterday"}, "since"),
        "until before since": ({"since": "2026-01-02T00:00:00Z",
                                "until": "2026-01-01T00:00:00Z"}, "until"),
        "a zero limit": ({"automationName": "sync", "limit": 0}, "limit"),
        "fromStep on cancel": ({"automationName": "sync", "fromStep": "push"}, "fromStep"),
    }
    for name, (body, field) in cases.items():
        path = "/api/automations/runs/cancel" if "cancel" in name or "status" in name \
            else "/api/automations/runs/replay"
        response = post(client, path, operator, body)
        assert response.status_code == 400, name
        assert field in str(response.json_body["details"]), (name, response.json_body)
    over = post(client, "/api/automations/runs/replay", operator,
                {"automationName": "sync", "limit": 10_001})
    assert over.status_code == 400 and over.json_body["details"][0]["field"] == "limit"


def test_bulk_roles(client, deps):
    body = {"automationName": "sync"}
    assert post(client, "/api/automations/runs/replay", bearer(deps, "viewer"),
                body).status_code == 403
    assert post(client, "/api/automations/runs/cancel", bearer(deps, "viewer"),
                body).status_code == 403
    override = {**body, "triggerData": {"n": 0}}
    assert post(client, "/api/automations/runs/replay", bearer(deps, "operator"),
                override).status_code == 403
    assert post(client, "/api/automations/runs/replay", bearer(deps, "admin"),
                override).status_code == 202
    missing = client.http.get("/api/automations/batches/nope", headers=bearer(deps, "viewer"))
    assert missing.status_code == 404 and missing.json_body["code"] == "NOT_FOUND"
