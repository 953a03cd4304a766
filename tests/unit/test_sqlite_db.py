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
