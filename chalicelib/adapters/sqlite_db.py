"""One SQLite database file for the single-machine backend: connections, schema, migrations.

WAL journal with `synchronous=NORMAL` (a crash loses at most the last transactions not yet
checkpointed by the OS, never corrupts), one connection per thread (sqlite3 connections are
not shared across threads), and `BEGIN IMMEDIATE` for every conditional write, which takes
the database's write lock before the condition is read: a read-check-write in `write()` is
atomic across threads and processes, as a DynamoDB condition expression is per item.

Schema: each component (the store here; the local queue in sqlite_queue.py) registers an
ordered list of SQL migration steps with `register_schema`; `schema_version` records how
many steps of each component a file has applied, and opening a file applies the rest, in
order, each step in its own transaction. Steps are only ever appended, never edited.
"""
from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30.0
# Connections of finished threads kept for the next threads to adopt (the rest are closed).
MAX_IDLE_CONNECTIONS = 16

_schemas: dict[str, list[str]] = {}
_schemas_lock = threading.Lock()


def register_schema(component: str, steps: Sequence[str]) -> None:
    """Declare `component`'s migration steps (SQL scripts, oldest first). Registering again
    with more steps appends them; databases opened later, or `migrate()`d, apply the rest."""
    with _schemas_lock:
        known = _schemas.get(component, [])
        if list(steps[:len(known)]) != known:
            raise ValueError(f"schema {component!r}: registered steps may only be appended")
        _schemas[component] = list(steps)


class SqliteDatabase:
    """A database file shared by the SQLite adapters; hands each thread its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        # Every connection opened, with its thread: those of finished threads are closed
        # when the next one opens (a server may start a thread per request).
        self._connections: list[tuple[weakref.ref, sqlite3.Connection]] = []
        self._idle: list[sqlite3.Connection] = []  # of finished threads, to adopt
        self.migrate()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit).

        A thread without one adopts the idle connection of a thread that has finished (a
        server may start a thread per request): a new connection reads and parses the whole
        schema on its first statement, which costs more than the request itself."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                alive = []
                for thread, other in self._connections:
                    owner = thread()
                    if owner is not None and owner.is_alive():
                        alive.append((thread, other))
                    elif other.in_transaction or len(self._idle) >= MAX_IDLE_CONNECTIONS:
                        other.close()  # left mid-transaction (never reused), or one too many
                    else:
                        self._idle.append(other)
                conn = self._idle.pop() if self._idle else self._open()
                self._local.conn = conn
                self._connections = alive + [(weakref.ref(threading.current_thread()), conn)]
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def read(self, sql: str, params: Sequence | dict = ()) -> list[sqlite3.Row]:
        """Rows of one query (a consistent snapshot of the committed data)."""
        return self.connection().execute(sql, params).fetchall()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A `BEGIN IMMEDIATE` transaction: committed when the block ends, rolled back when it
        raises. Reads inside it see the latest committed data and no writer can interleave."""
        conn = self.connection()
        # Threads of this process queue on a lock rather than in SQLite's busy handler, which
        # sleeps in steps of up to 100 ms while another connection holds the write lock.
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in the block sees the same committed state."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def migrate(self) -> dict[str, int]:
        """Apply every registered step this file has not applied yet; returns the versions."""
        with _schemas_lock:
            schemas = {name: list(steps) for name, steps in _schemas.items()}
        conn = self.connection()
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                     " component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        versions = {}
        for component, steps in schemas.items():
            with self.write() as tx:
                row = tx.execute("SELECT version FROM schema_version WHERE component = ?",
                                 (component,)).fetchone()
                applied = row["version"] if row else 0
                if applied > len(steps):
                    raise RuntimeError(
                        f"{self.path}: schema {component!r} is at version {applied}, newer than"
                        f" this code ({len(steps)}); upgrade the code or use another RUNS_DB")
                for step in steps[applied:]:
                    for statement in _statements(step):
                        tx.execute(statement)
                tx.execute("INSERT INTO schema_version (component, version) VALUES (?, ?)"
                           " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                           (component, len(steps)))
            versions[component] = len(steps)
        return versions

    def versions(self) -> dict[str, int]:
        """The schema version of each component recorded in the file."""
        return {row["component"]: row["version"]
                for row in self.read("SELECT component, version FROM schema_version")}

    def close(self) -> None:
        """Close every connection this object opened (each thread's)."""
        with self._lock:
            connections, self._connections = self._connections, []
            idle, self._idle = self._idle, []
        for conn in [conn for _, conn in connections] + idle:
            conn.close()
        self._local = threading.local()


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one at a time (executescript would COMMIT)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):  # not a ";" inside a trigger body or string
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""


_databases: dict[str, SqliteDatabase] = {}
_databases_lock = threading.Lock()


def open_database(path: str | Path) -> SqliteDatabase:
    """The process's one SqliteDatabase for `path` (every adapter shares its connections)."""
    key = str(Path(path).resolve()) if str(path) != ":memory:" else ":memory:"
    with _databases_lock:
        if key not in _databases:
            _databases[key] = SqliteDatabase(path)
        return _databases[key]


# The store's schema (runs, steps, counts, definitions, markers, tokens, slots, rate
# buckets). Append new steps at the end; never edit a step that has shipped.
STORE_SCHEMA = [
    """
    CREATE TABLE definitions (
        ref TEXT PRIMARY KEY,
        body TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        list_sk TEXT NOT NULL,            -- "<createdAt>#<id>": the list order, descending
        automation_name TEXT NOT NULL,
        status TEXT NOT NULL,
        trigger_type TEXT NOT NULL,
        replay_of TEXT,
        created_at TEXT NOT NULL,
        expires_at INTEGER,               -- epoch seconds; hidden once past, then deleted
        version INTEGER NOT NULL,
        definition_ref TEXT NOT NULL REFERENCES definitions (ref),
        trigger_data TEXT NOT NULL,       -- JSON
        state TEXT NOT NULL,              -- JSON: the mutable fields besides status/expiry
        events TEXT NOT NULL DEFAULT '[]' -- JSON array, appended to by update_run
    );
    -- One index per filter combination, each ending in list_sk, so every list is one
    -- index range read backwards (statuses: one range each, merged).
    CREATE INDEX runs_by_all ON runs (list_sk);
    CREATE INDEX runs_by_automation ON runs (automation_name, list_sk);
    CREATE INDEX runs_by_status ON runs (status, list_sk);
    CREATE INDEX runs_by_trigger ON runs (trigger_type, list_sk);
    CREATE INDEX runs_by_automation_status ON runs (automation_name, status, list_sk);
    CREATE INDEX runs_by_automation_trigger ON runs (automation_name, trigger_type, list_sk);
    CREATE INDEX runs_by_status_trigger ON runs (status, trigger_type, list_sk);
    CREATE INDEX runs_by_automation_status_trigger
        ON runs (automation_name, status, trigger_type, list_sk);
    CREATE INDEX runs_by_replay ON runs (replay_of, list_sk) WHERE replay_of IS NOT NULL;
    CREATE INDEX runs_by_expiry ON runs (expires_at) WHERE expires_at IS NOT NULL;

    CREATE TABLE steps (
        run_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        body TEXT NOT NULL,               -- JSON of the step's fields
        lease_until TEXT,                 -- set by a claim, cleared by a result
        expires_at INTEGER,
        PRIMARY KEY (run_id, idx)
    ) WITHOUT ROWID;

    -- Exact totals: one row per (automation, trigger type, status), kept by triggers in the
    -- same transaction as the run write, so a total is a SUM over a few rows.
    CREATE TABLE run_counts (
        automation_name TEXT NOT NULL,
        trigger_type TEXT NOT NULL,
        status TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (automation_name, trigger_type, status)
    ) WITHOUT ROWID;
    CREATE TRIGGER runs_counted_on_insert AFTER INSERT ON runs BEGIN
        INSERT OR IGNORE INTO run_counts VALUES
            (NEW.automation_name, NEW.trigger_type, NEW.status, 0);
        UPDATE run_counts SET n = n + 1 WHERE automation_name = NEW.automation_name
            AND trigger_type = NEW.trigger_type AND status = NEW.status;
    END;
    CREATE TRIGGER runs_counted_on_status AFTER UPDATE OF status ON runs
    WHEN OLD.status IS NOT NEW.status BEGIN
        UPDATE run_counts SET n = n - 1 WHERE automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        INSERT OR IGNORE INTO run_counts VALUES
            (NEW.automation_name, NEW.trigger_type, NEW.status, 0);
        UPDATE run_counts SET n = n + 1 WHERE automation_name = NEW.automation_name
            AND trigger_type = NEW.trigger_type AND status = NEW.status;
    END;
    CREATE TRIGGER runs_counted_on_delete AFTER DELETE ON runs BEGIN
        UPDATE run_counts SET n = n - 1 WHERE automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
    END;

    CREATE TABLE markers (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,              -- JSON object
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX markers_by_expiry ON markers (expires_at);

    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;

    CREATE TABLE slots (
        automation TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (automation, run_id)
    ) WITHOUT ROWID;
    """,
    # 2: totals by createdAt time buckets (day, hour, minute), so a since/until total is a SUM
    # over whole buckets plus an index COUNT of the partial minutes at its two ends.
    """
    CREATE TABLE run_time_counts (
        level TEXT NOT NULL,              -- 'd', 'h' or 'm'
        bucket TEXT NOT NULL,             -- createdAt's first 10, 13 or 16 characters
        automation_name TEXT NOT NULL,
        trigger_type TEXT NOT NULL,
        status TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (level, bucket, automation_name, trigger_type, status)
    ) WITHOUT ROWID;
    INSERT INTO run_time_counts
        SELECT 'd', substr(created_at, 1, 10), automation_name, trigger_type, status,
            COUNT(*) FROM runs GROUP BY 2, 3, 4, 5;
    INSERT INTO run_time_counts
        SELECT 'h', substr(created_at, 1, 13), automation_name, trigger_type, status,
            COUNT(*) FROM runs GROUP BY 2, 3, 4, 5;
    INSERT INTO run_time_counts
        SELECT 'm', substr(created_at, 1, 16), automation_name, trigger_type, status,
            COUNT(*) FROM runs GROUP BY 2, 3, 4, 5;
    CREATE TRIGGER runs_time_counted_on_insert AFTER INSERT ON runs BEGIN
        INSERT INTO run_time_counts VALUES ('d', substr(NEW.created_at, 1, 10),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('h', substr(NEW.created_at, 1, 13),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('m', substr(NEW.created_at, 1, 16),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER runs_time_counted_on_status AFTER UPDATE OF status ON runs
    WHEN OLD.status IS NOT NEW.status BEGIN
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'd'
            AND bucket = substr(OLD.created_at, 1, 10) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'h'
            AND bucket = substr(OLD.created_at, 1, 13) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'm'
            AND bucket = substr(OLD.created_at, 1, 16) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        INSERT INTO run_time_counts VALUES ('d', substr(NEW.created_at, 1, 10),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('h', substr(NEW.created_at, 1, 13),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('m', substr(NEW.created_at, 1, 16),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER runs_time_counted_on_delete AFTER DELETE ON runs BEGIN
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'd'
            AND bucket = substr(OLD.created_at, 1, 10) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'h'
            AND bucket = substr(OLD.created_at, 1, 13) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'm'
            AND bucket = substr(OLD.created_at, 1, 16) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
    END;
    """,
    # 3: second buckets too, so the partial ends a since/until total counts by index are at
    # most a second of runs each (a minute could hold thousands).
    """
    INSERT INTO run_time_counts
        SELECT 's', substr(created_at, 1, 19), automation_name, trigger_type, status,
            COUNT(*) FROM runs GROUP BY 2, 3, 4, 5;
    DROP TRIGGER runs_time_counted_on_insert;
    DROP TRIGGER runs_time_counted_on_status;
    DROP TRIGGER runs_time_counted_on_delete;
    CREATE TRIGGER runs_time_counted_on_insert AFTER INSERT ON runs BEGIN
        INSERT INTO run_time_counts VALUES ('d', substr(NEW.created_at, 1, 10),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('h', substr(NEW.created_at, 1, 13),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('m', substr(NEW.created_at, 1, 16),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('s', substr(NEW.created_at, 1, 19),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER runs_time_counted_on_status AFTER UPDATE OF status ON runs
    WHEN OLD.status IS NOT NEW.status BEGIN
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'd'
            AND bucket = substr(OLD.created_at, 1, 10) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'h'
            AND bucket = substr(OLD.created_at, 1, 13) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'm'
            AND bucket = substr(OLD.created_at, 1, 16) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 's'
            AND bucket = substr(OLD.created_at, 1, 19) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        INSERT INTO run_time_counts VALUES ('d', substr(NEW.created_at, 1, 10),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('h', substr(NEW.created_at, 1, 13),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('m', substr(NEW.created_at, 1, 16),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO run_time_counts VALUES ('s', substr(NEW.created_at, 1, 19),
            NEW.automation_name, NEW.trigger_type, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER runs_time_counted_on_delete AFTER DELETE ON runs BEGIN
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'd'
            AND bucket = substr(OLD.created_at, 1, 10) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'h'
            AND bucket = substr(OLD.created_at, 1, 13) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 'm'
            AND bucket = substr(OLD.created_at, 1, 16) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
        UPDATE run_time_counts SET n = n - 1 WHERE level = 's'
            AND bucket = substr(OLD.created_at, 1, 19) AND automation_name = OLD.automation_name
            AND trigger_type = OLD.trigger_type AND status = OLD.status;
    END;
    """,
    # 4: tokens expire and record their last use; they are listed and revoked by id.
    """
    ALTER TABLE tokens ADD COLUMN expires_at TEXT;
    ALTER TABLE tokens ADD COLUMN last_used_at TEXT;
    CREATE INDEX tokens_by_id ON tokens (token_id);
    """,
    # 5: runs parked on a retry or a delay (waiting_kind, set only while running), and up to
    # three search keys of declared trigger-data values (domain/search.py), each indexed.
    """
    ALTER TABLE runs ADD COLUMN waiting_kind TEXT;
    ALTER TABLE runs ADD COLUMN search1 TEXT;
    ALTER TABLE runs ADD COLUMN search2 TEXT;
    ALTER TABLE runs ADD COLUMN search3 TEXT;
    CREATE INDEX runs_by_waiting ON runs (waiting_kind, list_sk) WHERE waiting_kind IS NOT NULL;
    CREATE INDEX runs_by_search1 ON runs (search1, list_sk) WHERE search1 IS NOT NULL;
    CREATE INDEX runs_by_search2 ON runs (search2, list_sk) WHERE search2 IS NOT NULL;
    CREATE INDEX runs_by_search3 ON runs (search3, list_sk) WHERE search3 IS NOT NULL;
    """,
    # 6: webhook rate limits, one bucket per automation (its GCRA arrival time, epoch µs).
    """
    CREATE TABLE rate_buckets (
        key TEXT PRIMARY KEY,
        tat INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
]
register_schema("store", STORE_SCHEMA)
