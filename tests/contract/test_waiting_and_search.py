"""RunRepository contract for the incident queries (issue 17): runs parked on a retry or a
delay (`waiting`), and search by a declared trigger-data key (`data`), on every backend."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.domain.model import RunFilter, Waiting
from chalicelib.domain.search import search_key, search_keys
from chalicelib.domain.statuses import RunStatus

from tests.support.factories import BASE_TIME, make_run, make_step

INDEX = ["orderId", "customer"]


def _running(backend, **overrides):
    run = make_run(**overrides)
    backend.repo.create_run(run)
    return backend.repo.update_run(run.evolve(status=RunStatus.RUNNING, version=1),
                                   expected_status=RunStatus.PENDING)


def _park(backend, run, kind, step="charge", attempt=2):
    waiting = Waiting(kind=kind, step=step, step_index=0, attempt=attempt,
                      until=BASE_TIME + timedelta(minutes=10))
    return backend.repo.update_run(run.evolve(waiting=waiting), expected_status=RunStatus.RUNNING)


def _searchable(backend, order_id, automation="shop", **overrides):
    data = {"orderId": order_id, "customer": "c-1", **overrides.pop("extra", {})}
    run = make_run(automation_name=automation, trigger_data=data,
                   definition={"name": automation, "index": INDEX, "actions": [{"name": "a"}]},
                   search_keys=search_keys(INDEX, data), **overrides)
    backend.repo.create_run(run)
    return run


def _ids(backend, filt, limit=50):
    return [run.id for run in backend.repo.list_runs(filt, limit=limit).runs]


class TestWaiting:
    def test_a_parked_run_says_what_it_waits_for_and_is_listed_by_kind(self, backend):
        retrying = _park(backend, _running(backend, automation_name="alpha"), "retry")
        delayed = _park(backend, _running(backend, automation_name="beta"), "delay", "pause", 1)
        _running(backend, automation_name="alpha")  # running, not parked
        backend.settle()

        stored = backend.repo.get_run(retrying.id)
        assert stored.waiting == Waiting("retry", "charge", 0, 2,
                                         BASE_TIME + timedelta(minutes=10))
        assert stored.to_json()["waitingUntil"] == "2026-03-01T12:10:00.000Z"
        assert stored.to_json()["waiting"]["step"] == "charge"
        assert _ids(backend, RunFilter(waiting="retry")) == [retrying.id]
        assert _ids(backend, RunFilter(waiting="delay")) == [delayed.id]
        assert backend.repo.count_runs(RunFilter(waiting="retry")) == 1
        assert _ids(backend, RunFilter(waiting="retry", automation_name="beta")) == []
        assert _ids(backend, RunFilter(waiting="delay", automation_name="beta")) == [delayed.id]
        assert backend.repo.count_runs(RunFilter(waiting="delay",
                                                 automation_name="alpha")) == 0

    def test_a_resumed_or_ended_run_leaves_the_waiting_list(self, backend):
        resumed = _park(backend, _running(backend), "retry")
        ended = _park(backend, _running(backend), "retry")
        backend.repo.update_run(resumed.evolve(waiting=None), expected_status=RunStatus.RUNNING)
        # An end written from a copy that still says "waiting": an ended run waits for nothing.
        backend.repo.update_run(ended.evolve(status=RunStatus.CANCELLED),
                                expected_status=RunStatus.RUNNING)
        backend.settle()

        assert _ids(backend, RunFilter(waiting="retry")) == []
        assert backend.repo.count_runs(RunFilter(waiting="retry")) == 0
        assert backend.repo.get_run(resumed.id).waiting is None
        assert backend.repo.get_run(ended.id).to_json()["waiting"] is None

    def test_waiting_runs_page_newest_first(self, backend):
        parked = [_park(backend, _running(backend), "retry") for _ in range(5)]
        backend.settle()
        first = backend.repo.list_runs(RunFilter(waiting="retry"), limit=2)
        rest = backend.repo.list_runs(RunFilter(waiting="retry"), limit=10,
                                      after=first.runs[-1].sort_key)
        assert first.has_more
        assert [r.id for r in first.runs + rest.runs] == [r.id for r in reversed(parked)]


class TestSearchByPayload:
    def test_a_declared_key_finds_exactly_its_runs(self, backend):
        a1 = _searchable(backend, "A-1")
        a1_again = _searchable(backend, "A-1", automation="refunds")
        _searchable(backend, "A-2")
        numeric = _searchable(backend, 1234)
        backend.settle()

        assert _ids(backend, RunFilter(data=("orderId", "A-1"))) == [a1_again.id, a1.id]
        assert backend.repo.count_runs(RunFilter(data=("orderId", "A-1"))) == 2
        assert _ids(backend, RunFilter(data=("orderId", "A-1"), automation_name="shop")) == [a1.id]
        assert backend.repo.count_runs(RunFilter(data=("orderId", "A-1"),
                                                 automation_name="shop")) == 1
        assert _ids(backend, RunFilter(data=("orderId", "1234"))) == [numeric.id]
        assert _ids(backend, RunFilter(data=("orderId", "A-3"))) == []
        # The second declared key sits in another index position: found the same way.
        assert len(_ids(backend, RunFilter(data=("customer", "c-1")))) == 4
        assert backend.repo.count_runs(RunFilter(data=("customer", "c-1"))) == 4

    def test_search_combines_with_status(self, backend):
        run = _searchable(backend, "B-1")
        _searchable(backend, "B-1")
        backend.repo.update_run(run.evolve(status=RunStatus.RUNNING, version=1),
                                expected_status=RunStatus.PENDING)
        backend.settle()
        filt = RunFilter(data=("orderId", "B-1"), statuses=(RunStatus.RUNNING,))
        assert _ids(backend, filt) == [run.id]
        assert backend.repo.count_runs(filt) == 1

    def test_an_undeclared_key_or_a_key_without_value_finds_nothing(self, backend):
        _searchable(backend, None, extra={"note": "x"})
        backend.settle()
        assert _ids(backend, RunFilter(data=("note", "x"))) == []
        assert _ids(backend, RunFilter(data=("orderId", "None"))) == []
        assert _ids(backend, RunFilter(data=("orderId", "null"))) == []

    def test_search_keys_are_kept_by_later_writes_and_steps(self, backend):
        run = _searchable(backend, "C-9")
        backend.repo.create_run(make_run(), [make_step(0)])
        backend.repo.update_run(run.evolve(status=RunStatus.RUNNING, version=1),
                                expected_status=RunStatus.PENDING)
        backend.settle()
        assert backend.repo.get_run(run.id).search_keys == (search_key("orderId", "C-9"),
                                                            search_key("customer", "c-1"))
        assert _ids(backend, RunFilter(data=("orderId", "C-9"))) == [run.id]


class TestRetryNowStepFields:
    def test_woken_at_and_revoked_tokens_are_stored_with_the_step(self, backend):
        run = _running(backend)
        step = make_step(0)
        claimed = backend.repo.claim_step(run.id, step, token="t1", now=BASE_TIME,
                                          lease_until=BASE_TIME + timedelta(seconds=60))
        woken = claimed.evolve(woken_at=BASE_TIME, revoked=("old-token",),
                               next_attempt_at=BASE_TIME, claim_token="new")
        backend.repo.write_step(run.id, woken, expect={claimed.status}, token="t1")
        _, steps = backend.repo.get_detail(run.id)
        assert steps[0].woken_at == BASE_TIME
        assert steps[0].revoked == ("old-token",)
        # A claim keeps them (the executor reads them after the claim).
        reclaimed = backend.repo.claim_step(run.id, steps[0], token="t2", now=BASE_TIME,
                                            lease_until=BASE_TIME + timedelta(seconds=60))
        assert reclaimed.revoked == ("old-token",)
        _, steps = backend.repo.get_detail(run.id)
        assert steps[0].revoked == ("old-token",) and steps[0].woken_at == BASE_TIME
