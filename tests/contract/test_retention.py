"""RunRepository contract: finding and deleting runs past their retention (the sweeper's purge)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.domain.errors import RunNotFound
from chalicelib.domain.model import RunFilter
from chalicelib.domain.statuses import RunStatus

from tests.support.factories import make_run, make_step


def now(backend) -> datetime:
    return datetime.fromtimestamp(backend.clock(), timezone.utc)


def store(backend, count, expires_in, **overrides):
    """`count` runs expiring `expires_in` seconds from now (None: never), each with 2 steps."""
    expiry = None if expires_in is None else int(backend.clock()) + expires_in
    runs = [make_run(expires_at=expiry, **overrides) for _ in range(count)]
    for run in runs:
        backend.repo.create_run(run, [make_step(0), make_step(1)])
    return runs


class TestRetention:
    def test_expired_runs_are_the_expired_ones_oldest_first(self, backend):
        expired = store(backend, 3, expires_in=10)
        store(backend, 2, expires_in=3600)
        backend.clock.advance(11)

        found = backend.repo.expired_runs(now(backend), limit=10)

        assert found == [run.id for run in expired]

    def test_expired_runs_returns_at_most_limit(self, backend):
        expired = store(backend, 4, expires_in=10)
        backend.clock.advance(11)

        assert backend.repo.expired_runs(now(backend), limit=2) == [r.id for r in expired[:2]]

    def test_nothing_is_expired_before_its_expiry(self, backend):
        store(backend, 2, expires_in=10)
        store(backend, 1, expires_in=None)
        backend.clock.advance(9)

        assert backend.repo.expired_runs(now(backend), limit=10) == []

    def test_deleting_a_run_removes_it_and_its_steps(self, backend):
        [run] = store(backend, 1, expires_in=10)
        backend.clock.advance(11)

        backend.repo.delete_run(run.id)
        backend.clock.advance(-11)  # it would be live again, were anything of it left

        with pytest.raises(RunNotFound):
            backend.repo.get_detail(run.id)
        assert backend.repo.expired_runs(now(backend).replace(year=2100), limit=10) == []

    def test_deleting_a_missing_run_is_a_no_op(self, backend):
        backend.repo.delete_run("no-such-run")

    def test_purged_expired_runs_leave_the_total_at_the_live_count(self, backend):
        live = store(backend, 2, expires_in=3600, automation_name="alpha")
        store(backend, 3, expires_in=10, automation_name="alpha", trigger_type="cron")
        backend.settle()
        backend.clock.advance(11)

        for run_id in backend.repo.expired_runs(now(backend), limit=100):
            backend.repo.delete_run(run_id)
        backend.settle()

        for filt in (RunFilter(), RunFilter(automation_name="alpha"),
                     RunFilter(trigger_type="cron"), RunFilter(statuses=(RunStatus.PENDING,))):
            listed = backend.repo.list_runs(filt, limit=100).runs
            assert backend.repo.count_runs(filt) == len(listed), filt
        assert backend.repo.count_runs(RunFilter()) == len(live)
        assert backend.repo.count_runs(RunFilter(trigger_type="cron")) == 0
