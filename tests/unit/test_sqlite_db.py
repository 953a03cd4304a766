"""The SQLite database file: pragmas, schema versions and forward migrations, transactions."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from chalicelib.adapters import sqlite_db
from chalicelib.adapters.sqlite_db import STORE_SCHEMA, SqliteDatabase, register_schema


@pytest.fixture
def component(monkeypatch):
    """A private schema registry for the test, holding the store's schema."""
    monkeypatch.setattr(sqlite_db, "_schemas", {"store": list(STORE_SCHEMA)})
    return "extra"


def test_a_new_file_gets_the_store_schema_in_wal_mode(tmp_path):
    db = SqliteDatabase(tmp_path / "sub" / "runs.db")

    assert db.versions()["store"] == len(STORE_SCHEMA)
    conn = db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "steps", "run_counts", "definitions", "markers", "tokens", "slots",
            "schema_version"} <= tables


def test_registered_steps_are_applied_once_and_later_steps_on_reopen(tmp_path, component):
    register_schema(component, ["CREATE TABLE extra (id INTEGER PRIMARY KEY);"])
    SqliteDatabase(tmp_path / "runs.db").connection().execute("INSERT INTO extra VALUES (1)")

    register_schema(component, ["CREATE TABLE extra (id INTEGER PRIMARY KEY);",
                                "ALTER TABLE extra ADD COLUMN note TEXT DEFAULT 'x';"])
    reopened = SqliteDatabase(tmp_path / "runs.db")

    assert reopened.versions()[component] == 2
    assert [tuple(row) for row in reopened.read("SELECT id, note FROM extra")] == [(1, "x")]


def test_registered_steps_may_only_be_appended(component):
    register_schema(component, ["CREATE TABLE a (x);"])

    with pytest.raises(ValueError):
        register_schema(component, ["CREATE TABLE b (x);"])


def test_a_file_from_newer_code_is_refused(tmp_path, component):
    register_schema(component, ["CREATE TABLE a (x);", "CREATE TABLE b (x);"])
    SqliteDatabase(tmp_path / "runs.db")
    sqlite_db._schemas[component] = ["CREATE TABLE a (x);"]

    with pytest.raises(RuntimeError, match="newer than this code"):
        SqliteDatabase(tmp_path / "runs.db")


def test_a_failed_migration_step_leaves_the_version_unchanged(tmp_path, component):
    register_schema(component, ["CREATE TABLE a (x); CREATE TABLE a (y);"])

    with pytest.raises(sqlite3.OperationalError):
        SqliteDatabase(tmp_path / "runs.db")

    sqlite_db._schemas[component] = ["CREATE TABLE a (x);"]
    assert SqliteDatabase(tmp_path / "runs.db").versions()[component] == 1


def test_a_write_that_raises_is_rolled_back(tmp_path):
    db = SqliteDatabase(tmp_path / "runs.db")

    with pytest.raises(RuntimeError):
        with db.write() as tx:
            tx.execute("INSERT INTO slots VALUES ('a', 'r1')")
            raise RuntimeError("boom")

    assert db.read("SELECT * FROM slots") == []


def test_each_thread_has_its_own_connection(tmp_path):
    db = SqliteDatabase(tmp_path / "runs.db")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(db.connection()))
    thread.start()
    thread.join()

    assert seen[0] is not db.connection()


def test_every_list_filter_reads_an_index_range_in_list_order(tmp_path):
    """No list sorts or scans the table: each range is an index search already in
    `createdAt desc, id desc` order (EXPLAIN QUERY PLAN), whatever the filters."""
    from datetime import datetime, timezone

    from chalicelib.adapters.sqlite_repository import list_queries
    from chalicelib.domain.model import RunFilter
    from chalicelib.domain.statuses import RunStatus

    db = SqliteDatabase(tmp_path / "runs.db")
    day = datetime(2026, 3, 1, tzinfo=timezone.utc)
    filters = [RunFilter(automation_name=automation, statuses=statuses, trigger_type=trigger,
                         replay_of=replay, since=since, until=since)
               for automation in (None, "a") for trigger in (None, "cron")
               for statuses in ((), (RunStatus.FAILED,), (RunStatus.PENDING, RunStatus.RUNNING))
               for replay in (None, "r1") for since in (None, day)]
    # Waiting and search by payload, alone and next to the other filters.
    filters += [RunFilter(automation_name=automation, statuses=statuses, waiting=waiting,
                          data=data, since=since)
                for automation in (None, "a") for statuses in ((), (RunStatus.RUNNING,))
                for waiting, data in (("retry", None), (None, ("orderId", "A-1")),
                                      ("delay", ("orderId", "A-1")))
                for since in (None, day)]
    for filt in filters:
        for sql, params in list_queries(filt, after="2026-03-02T00:00:00.000Z#x"):
            plan = [row[3] for row in db.read("EXPLAIN QUERY PLAN " + sql, params)]
            assert not any("TEMP B-TREE" in step for step in plan), (filt, plan)
            unfiltered = filt == RunFilter(since=filt.since, until=filt.until)
            assert all(("SEARCH" in step or unfiltered) and "USING INDEX" in step
                       for step in plan), (filt, plan)


def test_connections_of_finished_threads_are_closed(tmp_path):
    db = SqliteDatabase(tmp_path / "runs.db")
    for _ in range(5):
        thread = threading.Thread(target=lambda: db.read("SELECT 1"))
        thread.start()
        thread.join()

    # This thread's and the last finished thread's (closed when the next one opens).
    assert len(db._connections) == 2


def test_large_values_stay_inline(tmp_path):
    """No item budget on SQLite: megabyte trigger data and outputs are stored and read whole."""
    from chalicelib.adapters.sqlite_repository import SqliteRunRepository
    from chalicelib.domain.statuses import StepStatus
    from tests.support.factories import make_run, make_step

    repo = SqliteRunRepository(SqliteDatabase(tmp_path / "runs.db"))
    big = {"blob": "x" * 1_000_000, "list": list(range(10_000))}
    run = make_run(trigger_data=big)
    repo.create_run(run, [make_step(0, status=StepStatus.COMPLETED, output=big)])

    stored, [step] = repo.get_detail(run.id)

    assert stored.trigger_data == big and step.output == big


def _statements(db: SqliteDatabase) -> list[str]:
    """The first word of each statement this thread's connection runs from now on. The
    statements of a trigger it fires are reported with the text of the statement that fired
    it: one statement, so they are left out."""
    seen: list[str] = []
    last: list[str] = [""]

    def trace(sql: str) -> None:
        if sql != last[0] or sql in ("BEGIN IMMEDIATE", "COMMIT", "BEGIN"):
            seen.append(sql.split()[0].upper())
        last[0] = sql

    db.connection().set_trace_callback(trace)
    return seen


def test_the_executors_run_reads_and_writes_take_the_fewest_statements(tmp_path):
    """Round trips per step on SQLite: reading a run is one statement (no transaction around
    it), a run write one BEGIN IMMEDIATE with its condition read and an UPDATE … RETURNING."""
    from datetime import timedelta

    from chalicelib.adapters.sqlite_repository import SqliteRunRepository
    from chalicelib.domain.statuses import RunStatus
    from tests.support.factories import BASE_TIME, make_run

    db = SqliteDatabase(tmp_path / "runs.db")
    repo = SqliteRunRepository(db)
    run = make_run()
    repo.create_run(run)
    seen = _statements(db)

    stored = repo.get_run(run.id)
    reads = list(seen)
    seen.clear()
    started = stored.transition(RunStatus.RUNNING, at=BASE_TIME + timedelta(seconds=1),
                                   actor="test")
    written = repo.update_run(started[0], expected_status=RunStatus.PENDING, event=started[1])

    assert reads == ["SELECT"]
    assert seen == ["BEGIN", "SELECT", "UPDATE", "COMMIT"]
    assert written.status == RunStatus.RUNNING and written.version == stored.version + 1
    assert repo.get_run(run.id) == written


def _in_thread(call):
    """`call()` on a thread of its own that has finished when this returns; its result."""
    result = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join()
    return result[0]


def test_a_new_thread_adopts_the_connection_of_a_finished_one(tmp_path):
    # A server may start a thread per request; a fresh connection parses the whole schema on
    # its first statement, so a finished thread's idle connection is handed on instead.
    db = SqliteDatabase(tmp_path / "runs.db")
    first = _in_thread(db.connection)
    second = _in_thread(db.connection)
    assert second is first
    assert _in_thread(lambda: db.read("SELECT COUNT(*) FROM runs")[0][0]) == 0
    db.close()


def test_a_connection_left_mid_transaction_is_closed_not_adopted(tmp_path):
    db = SqliteDatabase(tmp_path / "runs.db")

    def leave_open():
        conn = db.connection()
        conn.execute("BEGIN")
        return conn

    abandoned = _in_thread(leave_open)
    adopted = _in_thread(db.connection)
    assert adopted is not abandoned
    assert not adopted.in_transaction
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        abandoned.execute("SELECT 1")
    db.close()


def test_live_threads_never_share_a_connection(tmp_path):
    db = SqliteDatabase(tmp_path / "runs.db")
    ready, release = threading.Barrier(3), threading.Event()
    seen = []

    def hold():
        seen.append(db.connection())
        ready.wait()
        release.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    ready.wait()
    mine = db.connection()
    release.set()
    for thread in threads:
        thread.join()
    assert len({id(conn) for conn in seen + [mine]}) == 3
    db.close()
