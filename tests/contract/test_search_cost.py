"""Search by payload and the waiting list cost the same at 100 and at 10,000 runs: a fixed
number of DynamoDB requests, and on SQLite the same number of VM steps (index searches, no scan).
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.adapters.dynamo_models import run_to_item
from chalicelib.adapters.dynamo_repository import DynamoRunRepository
from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.adapters.sqlite_repository import SqliteRunRepository
from chalicelib.domain.model import RunFilter, Waiting
from chalicelib.domain.search import search_keys
from chalicelib.domain.statuses import RunStatus

from tests.contract.test_request_cost import counted_requests
from tests.support.factories import BASE_TIME, make_run

INDEX = ["orderId", "customer"]
MATCHING = 5  # runs with orderId "HOT", and runs waiting for a retry, at either size


def _run(index: int, hot: bool = False):
    data = {"orderId": "HOT" if hot else f"order-{index}", "customer": f"c-{index % 50}"}
    status = RunStatus.RUNNING if hot else (RunStatus.COMPLETED, RunStatus.FAILED)[index % 2]
    waiting = Waiting("retry", "charge", 0, 2, BASE_TIME + timedelta(minutes=10)) if hot else None
    return make_run(automation_name=("shop", "refunds")[index % 2], status=status,
                    trigger_data=data, search_keys=search_keys(INDEX, data), waiting=waiting,
                    definition={"name": "shop", "index": INDEX, "actions": [{"name": "a"}]})


def _runs(start: int, count: int, hot: bool = False):
    return [_run(index, hot) for index in range(start, start + count)]


SCENARIOS = {
    "search": lambda repo: repo.list_runs(RunFilter(data=("orderId", "HOT")), limit=20),
    "search, by automation": lambda repo: repo.list_runs(
        RunFilter(data=("orderId", "HOT"), automation_name="shop"), limit=20),
    "search, count": lambda repo: repo.count_runs(RunFilter(data=("orderId", "HOT"))),
    "search, none match": lambda repo: repo.list_runs(
        RunFilter(data=("orderId", "nothing")), limit=20),
    "waiting": lambda repo: repo.list_runs(RunFilter(waiting="retry"), limit=20),
    "waiting, by automation": lambda repo: repo.list_runs(
        RunFilter(waiting="retry", automation_name="refunds"), limit=20),
    "waiting, count": lambda repo: repo.count_runs(RunFilter(waiting="retry")),
}

EXPECTED_DYNAMO = {
    "search": {"Query": 3, "BatchGetItem": 1},
    "search, by automation": {"Query": 3, "BatchGetItem": 1},
    "search, count": {"Query": 3},
    "search, none match": {"Query": 3},
    "waiting": {"Query": 1, "BatchGetItem": 1},
    "waiting, by automation": {"Query": 1, "BatchGetItem": 1},
    "waiting, count": {"Query": 1},
}


class TestDynamoCost:
    @pytest.fixture
    def repo(self, aws, settings):
        return DynamoRunRepository(settings)

    @staticmethod
    def _seed(repo, runs):
        with repo.tables.run.batch_write() as batch:
            for run in runs:
                batch.save(run_to_item(repo.tables.run, run.evolve(version=1)))

    @staticmethod
    def _measure(repo):
        costs, answers = {}, {}
        for name, scenario in SCENARIOS.items():
            with counted_requests(repo.client) as calls:
                answers[name] = scenario(repo)
            costs[name] = dict(calls)
        return costs, answers

    def test_search_and_waiting_cost_the_same_requests_with_100_and_10000_runs(self, repo):
        self._seed(repo, _runs(0, MATCHING, hot=True) + _runs(MATCHING, 100 - MATCHING))
        with_100, answers = self._measure(repo)
        assert len(answers["search"].runs) == MATCHING
        assert answers["search, count"] == MATCHING

        self._seed(repo, _runs(100, 9_900))
        with_10000, answers = self._measure(repo)

        assert len(answers["search"].runs) == MATCHING
        assert answers["waiting, count"] == MATCHING
        assert with_100 == with_10000
        assert with_10000 == EXPECTED_DYNAMO


class TestSqliteCost:
    """Requests are local calls on SQLite: the cost that could grow is the rows a statement
    visits. The VM steps (progress handler) of each query are the same at either size."""

    @staticmethod
    def _seed(repo, runs):
        for run in runs:
            repo.create_run(run)

    @staticmethod
    def _measure(repo):
        conn = repo.db.connection()
        costs, answers = {}, {}
        for name, scenario in SCENARIOS.items():
            steps = [0]

            def tick(steps=steps):
                steps[0] += 1
                return 0

            conn.set_progress_handler(tick, 1)
            try:
                answers[name] = scenario(repo)
            finally:
                conn.set_progress_handler(None, 1)
            costs[name] = steps[0]
        return costs, answers

    def test_search_and_waiting_visit_the_same_rows_with_100_and_10000_runs(self, tmp_path):
        repo = SqliteRunRepository(SqliteDatabase(tmp_path / "runs.db"))
        self._seed(repo, _runs(0, MATCHING, hot=True) + _runs(MATCHING, 100 - MATCHING))
        with_100, answers = self._measure(repo)
        assert answers["search, count"] == MATCHING

        self._seed(repo, _runs(100, 9_900))
        with_10000, answers = self._measure(repo)

        assert len(answers["search"].runs) == MATCHING
        assert answers["waiting, count"] == MATCHING
        assert with_100 == with_10000
