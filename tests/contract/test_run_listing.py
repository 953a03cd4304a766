"""RunRepository contract: listing, paging and exact counts under every filter combination."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain.model import RunFilter
from chalicelib.domain.statuses import TRANSITIONS, RunStatus

from tests.support.factories import BASE_TIME, make_run

AUTOMATIONS = ("alpha", "beta", "gamma")
TRIGGERS = ("manual", "webhook", "cron")
FINAL = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.FAILED,
         RunStatus.CANCELLED, RunStatus.COMPLETED_WITH_ERRORS, RunStatus.EXHAUSTED,
         RunStatus.TIMED_OUT)
S = RunStatus


def advance(repo, run, target):
    """Drive a stored run to `target` through legal transitions; returns the stored run."""
    if run.status == target:
        return run
    if run.status == RunStatus.PENDING and target != RunStatus.CANCELLED:
        run = repo.update_run(run.evolve(status=RunStatus.RUNNING),
                              expected_status=RunStatus.PENDING)
    if run.status != target:
        assert target in TRANSITIONS[run.status]
        run = repo.update_run(run.evolve(status=target), expected_status=run.status)
    return run


def seed(backend, count=26):
    """Runs across automations, triggers, statuses and replays; pairs share a createdAt."""
    runs = []
    for i in range(count):
        run = make_run(
            automation_name=AUTOMATIONS[i % 3],
            trigger_type=TRIGGERS[(i // 3) % 3],
            created_at=BASE_TIME + timedelta(seconds=i // 2),
            replay_of="origin-1" if i % 5 == 0 else ("origin-2" if i % 7 == 0 else None),
        )
        backend.repo.create_run(run)
        advance(backend.repo, run.evolve(version=1), FINAL[(i * 5) % len(FINAL)])
        runs.append(backend.repo.get_run(run.id))
    backend.settle()
    return runs


def expected(runs, filt):
    """The oracle: filters applied one by one, newest first, ties by id descending."""
    chosen = [
        run for run in runs
        if (filt.automation_name is None or run.automation_name == filt.automation_name)
        and (not filt.statuses or run.status in filt.statuses)
        and (filt.trigger_type is None or run.trigger_type == filt.trigger_type)
        and (filt.replay_of is None or run.replay_of == filt.replay_of)
        and (filt.since is None or run.created_at >= filt.since)
        and (filt.until is None or run.created_at <= filt.until)
    ]
    return sorted(chosen, key=lambda run: (run.created_at, run.id), reverse=True)


FILTERS = {
    "none": RunFilter(),
    "automation": RunFilter(automation_name="alpha"),
    "status": RunFilter(statuses=(S.COMPLETED,)),
    "two statuses": RunFilter(statuses=(S.PENDING, S.FAILED)),
    "every status": RunFilter(statuses=tuple(RunStatus)),
    "automation+status": RunFilter(automation_name="beta", statuses=(S.RUNNING,)),
    "automation+statuses": RunFilter(automation_name="gamma",
                                     statuses=(S.CANCELLED, S.COMPLETED, S.TIMED_OUT)),
    "trigger": RunFilter(trigger_type="webhook"),
    "automation+trigger": RunFilter(automation_name="alpha", trigger_type="manual"),
    "statuses+trigger": RunFilter(statuses=(S.PENDING, S.COMPLETED), trigger_type="cron"),
    "replay": RunFilter(replay_of="origin-1"),
    "replay+status": RunFilter(replay_of="origin-1", statuses=(S.PENDING, S.COMPLETED)),
    "replay+automation": RunFilter(replay_of="origin-1", automation_name="alpha"),
    "replay+trigger": RunFilter(replay_of="origin-2", trigger_type="manual"),
    "since": RunFilter(since=BASE_TIME + timedelta(seconds=6)),
    "until": RunFilter(until=BASE_TIME + timedelta(seconds=4)),
    "since+until": RunFilter(since=BASE_TIME + timedelta(seconds=3),
                             until=BASE_TIME + timedelta(seconds=9)),
    "since+statuses": RunFilter(since=BASE_TIME + timedelta(seconds=2),
                                statuses=(S.RUNNING, S.EXHAUSTED)),
    "automation+since+until+trigger": RunFilter(
        automation_name="beta", since=BASE_TIME + timedelta(seconds=1),
        until=BASE_TIME + timedelta(seconds=11), trigger_type="webhook"),
    "everything": RunFilter(automation_name="alpha", statuses=(S.PENDING, S.COMPLETED),
                            trigger_type="manual", since=BASE_TIME,
                            until=BASE_TIME + timedelta(seconds=12)),
    "no match": RunFilter(automation_name="nobody"),
}


def ids(runs):
    return [run.id for run in runs]


@pytest.fixture(scope="class")
def seeded(shared_backend):
    """One seeded store per class and backend: these tests only read it."""
    return shared_backend, seed(shared_backend)


class TestRunListing:
    """Read-only tests over one seeded store: lists, paging, exact counts."""

    @pytest.mark.parametrize("name", FILTERS)
    def test_filtered_list_is_newest_first_with_ties_by_id(self, seeded, name):
        backend, runs = seeded
        filt = FILTERS[name]

        page = backend.repo.list_runs(filt, limit=100)

        assert ids(page.runs) == ids(expected(runs, filt))
        assert page.has_more is False

    @pytest.mark.parametrize("name", ["none", "two statuses", "automation+statuses", "since"])
    def test_cursor_paging_never_skips_or_repeats(self, seeded, name):
        backend, runs = seeded
        filt = FILTERS[name]
        seen, after = [], None
        while True:
            page = backend.repo.list_runs(filt, limit=3, after=after)
            seen += page.runs
            if not page.has_more:
                break
            after = page.runs[-1].sort_key

        assert ids(seen) == ids(expected(runs, filt))

    @pytest.mark.parametrize("name", ["none", "automation+status", "two statuses", "replay"])
    def test_offset_paging_matches_the_full_list(self, seeded, name):
        backend, runs = seeded
        want = expected(runs, FILTERS[name])
        pages = [backend.repo.list_runs(FILTERS[name], limit=4, offset=offset)
                 for offset in range(0, len(want) + 4, 4)]

        assert ids([run for page in pages for run in page.runs]) == ids(want)
        assert [page.has_more for page in pages if page.runs][-1] is False

    def test_after_a_run_excludes_it_and_everything_newer(self, seeded):
        backend, runs = seeded
        ordered = expected(runs, RunFilter())
        pivot = ordered[5]

        page = backend.repo.list_runs(RunFilter(), limit=100, after=pivot.sort_key)

        assert ids(page.runs) == ids(ordered[6:])

    def test_has_more_is_true_when_one_more_run_matches(self, seeded):
        backend, runs = seeded
        total = len(expected(runs, FILTERS["automation"]))

        assert backend.repo.list_runs(FILTERS["automation"], limit=total - 1).has_more
        assert not backend.repo.list_runs(FILTERS["automation"], limit=total).has_more

    def test_listed_runs_carry_their_stored_fields(self, seeded):
        backend, runs = seeded

        listed = backend.repo.list_runs(RunFilter(), limit=100).runs

        assert sorted(listed, key=lambda run: run.id) == sorted(runs, key=lambda run: run.id)

    def test_runs_in_status_are_oldest_first_unless_asked(self, seeded):
        backend, runs = seeded
        pending = sorted((run for run in runs if run.status == S.PENDING),
                         key=lambda run: run.sort_key)

        oldest = backend.repo.runs_in_status(S.PENDING)
        newest = backend.repo.runs_in_status(S.PENDING, oldest_first=False, limit=2)
        alpha = backend.repo.runs_in_status(S.PENDING, automation_name="alpha")

        assert ids(oldest) == ids(pending)
        assert ids(newest) == ids(pending[::-1][:2])
        assert ids(alpha) == ids([run for run in pending if run.automation_name == "alpha"])


    @pytest.mark.parametrize("name", FILTERS)
    def test_count_is_exact_for_each_filter(self, seeded, name):
        backend, runs = seeded

        assert backend.repo.count_runs(FILTERS[name]) == len(expected(runs, FILTERS[name]))

class TestRunCountUpdates:
    """Lists and counts after runs change, expire and are swept."""

    def test_expired_runs_are_not_listed(self, backend):
        live = make_run()
        doomed = make_run(expires_at=int(backend.clock()) + 10)
        backend.repo.create_run(live)
        backend.repo.create_run(doomed)
        backend.clock.advance(11)

        assert ids(backend.repo.list_runs(RunFilter(), limit=10).runs) == [live.id]

    def test_counts_follow_transitions(self, backend):
        runs = seed(backend, count=12)
        stored = {run.id: run for run in runs}
        for run in runs:
            if run.status == S.PENDING:
                stored[run.id] = advance(backend.repo, run, S.CANCELLED)
            elif run.status == S.RUNNING:
                stored[run.id] = advance(backend.repo, run, S.COMPLETED)
        backend.settle()

        for filt in (RunFilter(), RunFilter(statuses=(S.PENDING, S.RUNNING)),
                     RunFilter(statuses=(S.CANCELLED,)), RunFilter(automation_name="beta",
                                                                   statuses=(S.COMPLETED,))):
            assert backend.repo.count_runs(filt) == len(expected(stored.values(), filt))
        assert backend.repo.count_runs(RunFilter(statuses=(S.PENDING, S.RUNNING))) == 0

    def test_expired_runs_are_no_longer_counted_once_the_sweeper_purges_them(self, backend):
        keep = make_run(automation_name="alpha")
        gone = make_run(automation_name="alpha", expires_at=int(backend.clock()) + 10)
        backend.repo.create_run(keep)
        backend.repo.create_run(gone)
        backend.settle()
        assert backend.repo.count_runs(RunFilter(automation_name="alpha")) == 2

        backend.clock.advance(11)
        now = datetime.fromtimestamp(backend.clock(), timezone.utc)
        assert backend.repo.expired_runs(now, limit=10) == [gone.id]
        backend.repo.delete_run(gone.id)
        backend.settle()

        for filt in (RunFilter(), RunFilter(automation_name="alpha"),
                     RunFilter(statuses=(S.PENDING,)), RunFilter(trigger_type="manual"),
                     RunFilter(since=BASE_TIME - timedelta(days=1))):
            assert backend.repo.count_runs(filt) == 1, filt
            assert ids(backend.repo.list_runs(filt, limit=10).runs) == [keep.id], filt

    def test_an_expired_run_leaves_lists_at_once_and_the_total_when_deleted(self, backend):
        keep = make_run(automation_name="alpha")
        gone = make_run(automation_name="alpha", expires_at=int(backend.clock()) + 10)
        backend.repo.create_run(keep)
        backend.repo.create_run(gone)
        backend.settle()
        backend.clock.advance(11)

        assert ids(backend.repo.list_runs(RunFilter(automation_name="alpha"), limit=10).runs) == [
            keep.id]
        assert backend.repo.count_runs(RunFilter(automation_name="alpha")) == 2
        backend.repo.delete_run(gone.id)
        backend.settle()
        assert backend.repo.count_runs(RunFilter(automation_name="alpha")) == 1

    def test_runs_deleted_by_dynamodbs_ttl_are_no_longer_counted(self, backend):
        keep = make_run(automation_name="alpha")
        gone = make_run(automation_name="alpha", expires_at=int(backend.clock()) + 10)
        backend.repo.create_run(keep)
        backend.repo.create_run(gone)
        backend.clock.advance(11)
        backend.sweep(gone)
        backend.settle()

        assert backend.repo.count_runs(RunFilter(automation_name="alpha")) == 1
        assert backend.repo.count_runs(RunFilter(since=BASE_TIME - timedelta(days=1))) == 1

    def test_count_of_an_empty_store_is_zero(self, backend):
        assert backend.repo.count_runs(RunFilter()) == 0
        assert backend.repo.count_runs(RunFilter(automation_name="alpha",
                                                 statuses=(S.FAILED,))) == 0
