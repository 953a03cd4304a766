"""Filling a SQLite store with many runs fast, for the benches (`make bench`).

The runs are the rows `SqliteRunRepository.create_run` writes (`insert_many` shares its row
mapping), inserted 20,000 per transaction with the count triggers running per row as for any
insert. The secondary indexes of `runs` and `steps` are dropped first and created again from
their own stored SQL afterwards, which SQLite does in one sorted pass instead of 100,000
scattered inserts per index: the same indexes and rows, built about twice as fast (their
pages end up packed more tightly than after months of single inserts).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from itertools import islice

from chalicelib.adapters.sqlite_repository import SqliteRunRepository
from chalicelib.domain.model import Run, Step

BATCH = 20_000


def bulk_insert(repo: SqliteRunRepository, conn: sqlite3.Connection,
                runs: Iterable[tuple[Run, Sequence[Step]]]) -> int:
    """Insert `runs` (run, steps) through `conn`; returns how many were inserted."""
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('runs', 'steps')").fetchall()
    conn.execute("BEGIN IMMEDIATE")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("COMMIT")
    written, pending = 0, iter(runs)
    try:
        while batch := list(islice(pending, BATCH)):
            conn.execute("BEGIN IMMEDIATE")
            written += repo.insert_many(conn, batch)
            conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
    return written
