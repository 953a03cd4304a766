"""Reads cost a fixed number of DynamoDB requests, however many runs the table holds."""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from datetime import timedelta

import pytest

from chalicelib.adapters.counters import StreamPoller
from chalicelib.adapters.dynamo_models import run_to_item
from chalicelib.adapters.dynamo_repository import DynamoRunRepository
from chalicelib.domain.model import RunFilter
from chalicelib.domain.statuses import RunStatus

from tests.support.factories import BASE_TIME, make_run, make_step

AUTOMATIONS = ("alpha", "beta", "gamma")
STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.FAILED)
TRIGGERS = ("manual", "webhook")
FAR_FUTURE = BASE_TIME + timedelta(days=3650)
# Table sizes compared. Each status partition a list merges must hold more than a page at the
# smaller size too (a partition within one page answers in one request, whatever the filter),
# and LARGE - SMALL is a multiple of the seed's 12-run pattern, so the newest runs, which a
# list reads first, follow the same pattern at both sizes.
SMALL, LARGE = 144, 1440


@contextmanager
def counted_requests(client):
    """Count the DynamoDB operations `client` sends while the block runs."""
    calls: Counter[str] = Counter()

    def count(model, **_):
        calls[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)


def seed(repo, start, count):
    """Write runs in 25-item batches through the repository's own model."""
    with repo.tables.run.batch_write() as batch:
        for index in range(start, start + count):
            run = make_run(automation_name=AUTOMATIONS[index % 3],
                           status=STATUSES[index % 4], trigger_type=TRIGGERS[index % 2])
            batch.save(run_to_item(repo.tables.run, run.evolve(version=1)))


SCENARIOS = {
    "list, no filter": lambda repo, _: repo.list_runs(RunFilter(), limit=20),
    "list, second page": lambda repo, _: repo.list_runs(RunFilter(), limit=20, offset=20),
    "list by automation": lambda repo, _: repo.list_runs(
        RunFilter(automation_name="alpha"), limit=20),
    "list by status": lambda repo, _: repo.list_runs(
        RunFilter(statuses=(RunStatus.COMPLETED,)), limit=20),
    "list by automation and status": lambda repo, _: repo.list_runs(
        RunFilter(automation_name="beta", statuses=(RunStatus.RUNNING,)), limit=20),
    "list by two statuses": lambda repo, _: repo.list_runs(
        RunFilter(statuses=(RunStatus.PENDING, RunStatus.FAILED)), limit=20),
    "list by trigger type": lambda repo, _: repo.list_runs(
        RunFilter(trigger_type="webhook"), limit=20),
    "list by trigger type, none match": lambda repo, _: repo.list_runs(
        RunFilter(trigger_type="cron"), limit=20),
    # limit=10: alpha's completed and failed partitions (12 runs each at SMALL) then hold
    # more than the page too.
    "list by automation and trigger type, none match": lambda repo, _: repo.list_runs(
        RunFilter(automation_name="alpha", trigger_type="cron"), limit=10),
    "list since": lambda repo, _: repo.list_runs(RunFilter(since=BASE_TIME), limit=20),
    "list until": lambda repo, _: repo.list_runs(RunFilter(until=FAR_FUTURE), limit=20),
    "list since and until, none match": lambda repo, _: repo.list_runs(
        RunFilter(since=FAR_FUTURE, until=FAR_FUTURE), limit=20),
    "list since, by trigger type, none match": lambda repo, _: repo.list_runs(
        RunFilter(since=BASE_TIME, trigger_type="cron"), limit=20),
    # A cursor older than `since` (crafted): DynamoDB rejects `between` with lower > upper.
    "list since, after a run older than it": lambda repo, _: repo.list_runs(
        RunFilter(since=FAR_FUTURE), limit=20, after=make_run().sort_key),
    "count, no filter": lambda repo, _: repo.count_runs(RunFilter()),
    "count since": lambda repo, _: repo.count_runs(RunFilter(since=BASE_TIME)),
    "count since and until, by trigger type": lambda repo, _: repo.count_runs(
        RunFilter(since=BASE_TIME, until=FAR_FUTURE, trigger_type="webhook")),
    "count by automation, trigger and statuses": lambda repo, _: repo.count_runs(
        RunFilter(automation_name="gamma", trigger_type="manual",
                  statuses=(RunStatus.PENDING, RunStatus.COMPLETED))),
    "detail": lambda repo, run_id: repo.get_detail(run_id),
}

# A list without a status filter merges the byStatus (or, with an automation, the
# byAutomationStatus) partitions: "active" and the six end statuses, one Query each, every
# one limited to the page. A non-key filter (triggerType) costs a partition a second Query,
# of up to 1 MB of index entries, when its first did not match enough; where a Limit on every
# request took 3 Queries at 50 runs and 24 at 500.
EXPECTED = {
    "list, no filter": {"Query": 7, "BatchGetItem": 1},
    "list, second page": {"Query": 7, "BatchGetItem": 1},
    "list by automation": {"Query": 7, "BatchGetItem": 1},
    "list by two statuses": {"Query": 2, "BatchGetItem": 1},
    # Webhook runs are running or failed here: half the "active" page matches, so "active"
    # reads a second page.
    "list by trigger type": {"Query": 8, "BatchGetItem": 1},
    # Three partitions hold runs (two Queries each), four are empty (one each).
    "list by trigger type, none match": {"Query": 10},
    # The automation's "active" entries are read unlimited (dynamo_query._first_page).
    "list by automation and trigger type, none match": {"Query": 9},
    "list since": {"Query": 7, "BatchGetItem": 1},
    "list until": {"Query": 7, "BatchGetItem": 1},
    "list since and until, none match": {"Query": 7},
    "list since, after a run older than it": {},
    "list since, by trigger type, none match": {"Query": 10},
    "count since": {"Query": 7},
    "count since and until, by trigger type": {"Query": 7},
    "count, no filter": {"GetItem": 1},
    "count by automation, trigger and statuses": {"GetItem": 1},
    "detail": {"Query": 1},
}


def measure(repo, run_id):
    costs = {}
    for name, scenario in SCENARIOS.items():
        with counted_requests(repo.client) as calls:
            scenario(repo, run_id)
        costs[name] = dict(calls)
    return costs


@pytest.fixture
def repo(aws, settings):
    return DynamoRunRepository(settings)


class TestRequestCost:
    def test_reads_cost_the_same_requests_with_150_and_1500_runs(self, repo, settings):
        poller = StreamPoller(settings)
        detailed = make_run()
        repo.create_run(detailed, [make_step(index) for index in range(10)])
        seed(repo, 0, SMALL - 1)
        poller.drain()
        assert repo.count_runs(RunFilter()) == SMALL

        small = measure(repo, detailed.id)
        seed(repo, SMALL - 1, LARGE - SMALL)
        poller.drain()
        assert repo.count_runs(RunFilter()) == LARGE
        large = measure(repo, detailed.id)

        assert small == large
        for name, cost in large.items():
            assert cost == EXPECTED.get(name, {"Query": 1, "BatchGetItem": 1}), name

    def test_every_request_goes_through_the_exposed_client(self, repo, settings):
        run = make_run()
        with counted_requests(repo.client) as calls:
            repo.create_run(run, [make_step(0)])
            repo.update_run(run.evolve(status=RunStatus.RUNNING, version=1),
                            expected_status=RunStatus.PENDING)
            repo.get_run(run.id)

        # PutItem: the run's definition, stored once per version by this process.
        assert calls == {"PutItem": 1, "TransactWriteItems": 1, "UpdateItem": 1, "GetItem": 1}
