"""SQLite totals with since/until: whole day/hour/minute/second buckets plus the partial seconds at
the window's ends, checked against a plain count over runs spread across several days."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.adapters.sqlite_repository import SqliteRunRepository, _buckets, _run_state
from chalicelib.domain.clock import iso
from chalicelib.domain.model import RunFilter
from chalicelib.domain.statuses import RunStatus
from tests.support.factories import make_run

START = datetime(2026, 2, 27, 21, 13, 7, 250000, tzinfo=timezone.utc)
SPAN_S = 3 * 86400


def _random_instant(rng: random.Random) -> datetime:
    return START + timedelta(milliseconds=rng.randrange(SPAN_S * 1000))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    rng = random.Random(7)
    repo = SqliteRunRepository(SqliteDatabase(tmp_path_factory.mktemp("counts") / "runs.db"))
    runs = {}
    burst = [START + timedelta(milliseconds=rng.randrange(5000)) for _ in range(100)]
    for created_at in [_random_instant(rng) for _ in range(400)] + burst:  # + 100 in 5 s
        run = make_run(automation_name=rng.choice("ab"), trigger_type=rng.choice(["manual", "cron"]),
                       created_at=created_at)
        repo.create_run(run)
        runs[run.id] = run.evolve(version=1)
    for run in rng.sample(list(runs.values()), 150):  # status changes move bucket counts
        runs[run.id] = repo.update_run(run.evolve(status=RunStatus.RUNNING),
                                       expected_status=RunStatus.PENDING)
    for run_id in rng.sample(sorted(runs), 40):  # deletes take them out
        repo.delete_run(run_id)
        del runs[run_id]
    return repo, list(runs.values()), rng


def _expected(runs, filt: RunFilter) -> int:
    def at_ms(value):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return sum(1 for run in runs
               if (filt.automation_name is None or run.automation_name == filt.automation_name)
               and (not filt.statuses or run.status in filt.statuses)
               and (filt.trigger_type is None or run.trigger_type == filt.trigger_type)
               and (filt.since is None or run.created_at >= at_ms(filt.since))
               and (filt.until is None or run.created_at <= at_ms(filt.until)))


def test_windows_of_every_length_count_exactly(stored):
    repo, runs, rng = stored
    for _ in range(300):
        since, until = sorted([_random_instant(rng), _random_instant(rng)])
        if rng.random() < 0.3:  # windows of seconds, minutes and hours too
            until = since + timedelta(seconds=rng.choice([0, 1, 59, 61, 3599, 3601, 7300]))
        if rng.random() < 0.15:
            since = None
        elif rng.random() < 0.15:
            until = None
        if rng.random() < 0.2 and since is not None:  # exactly on a bucket boundary
            since = since.replace(minute=0, second=0, microsecond=0)
        if rng.random() < 0.25:  # inside the burst: partial seconds full of runs
            since = START + timedelta(milliseconds=rng.randrange(6000))
            until = since + timedelta(milliseconds=rng.randrange(4000))
        filt = RunFilter(since=since, until=until,
                         automation_name=rng.choice([None, "a"]),
                         trigger_type=rng.choice([None, "cron"]),
                         statuses=rng.choice([(), (RunStatus.RUNNING,),
                                              (RunStatus.PENDING, RunStatus.RUNNING)]))

        assert repo.count_runs(filt) == _expected(runs, filt), filt


def test_a_run_at_the_exact_instant_of_since_or_until_counts(stored):
    repo, runs, _ = stored
    run = runs[0]

    assert repo.count_runs(RunFilter(since=run.created_at, until=run.created_at)) == 1
    later = run.created_at + timedelta(milliseconds=1)
    assert repo.count_runs(RunFilter(since=later, until=later)) == _expected(
        runs, RunFilter(since=later, until=later))


def test_bucket_pieces_cover_the_window_once():
    utc = timezone.utc
    first = datetime(2026, 3, 1, 22, 58, 30, tzinfo=utc)
    last = datetime(2026, 3, 4, 1, 3, 10, tzinfo=utc)

    pieces = _buckets(first, last)

    assert pieces == [
        ("s", first, datetime(2026, 3, 1, 22, 59, tzinfo=utc)),
        ("s", datetime(2026, 3, 4, 1, 3, tzinfo=utc), last),
        ("m", datetime(2026, 3, 1, 22, 59, tzinfo=utc), datetime(2026, 3, 1, 23, tzinfo=utc)),
        ("m", datetime(2026, 3, 4, 1, tzinfo=utc), datetime(2026, 3, 4, 1, 3, tzinfo=utc)),
        ("h", datetime(2026, 3, 1, 23, tzinfo=utc), datetime(2026, 3, 2, tzinfo=utc)),
        ("h", datetime(2026, 3, 4, tzinfo=utc), datetime(2026, 3, 4, 1, tzinfo=utc)),
        ("d", datetime(2026, 3, 2, tzinfo=utc), datetime(2026, 3, 4, tzinfo=utc)),
    ]
    assert _buckets(first, first + timedelta(seconds=45)) == [
        ("s", first, first + timedelta(seconds=45))]


def test_a_file_with_runs_gets_its_time_buckets_when_migrated(tmp_path, monkeypatch):
    from chalicelib.adapters import sqlite_db

    path = tmp_path / "runs.db"
    monkeypatch.setattr(sqlite_db, "_schemas", {"store": sqlite_db.STORE_SCHEMA[:1]})  # 1st version
    old = SqliteDatabase(path)
    run = make_run(created_at=START)
    # The row as the first version wrote it (today's create_run writes later columns too).
    with old.write() as tx:
        tx.execute("INSERT INTO definitions (ref, body) VALUES ('d', '{}')")
        tx.execute("INSERT INTO runs (id, list_sk, automation_name, status, trigger_type,"
                   " created_at, version, definition_ref, trigger_data, state)"
                   " VALUES (?, ?, ?, ?, ?, ?, 1, 'd', '{}', ?)",
                   (run.id, run.sort_key, run.automation_name, run.status.value,
                    run.trigger_type, iso(run.created_at), _run_state(run)))
    monkeypatch.setattr(sqlite_db, "_schemas", {"store": list(sqlite_db.STORE_SCHEMA)})

    repo = SqliteRunRepository(SqliteDatabase(path))

    assert repo.db.versions()["store"] == len(sqlite_db.STORE_SCHEMA)
    assert repo.count_runs(RunFilter(since=START - timedelta(days=2),
                                     until=START + timedelta(days=2))) == 1
