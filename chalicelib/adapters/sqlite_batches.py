"""Bulk replay/cancel batches on SQLite: one row per batch, one per page of results."""
from __future__ import annotations

import json
import time
from datetime import timedelta

from ..domain.batches import (
    Batch, BatchNotFound, BatchPage, StaleBatch, batch_from_record, batch_to_record,
    page_from_record, page_to_record, with_page,
)
from ..domain.errors import AlreadyExists
from .sqlite_db import SqliteDatabase, register_schema

BATCH_SCHEMA = [
    """
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,               -- JSON of the batch's fields (batch_to_record)
        version INTEGER NOT NULL,
        expires_at INTEGER NOT NULL       -- epoch seconds: created + the runs' retention
    ) WITHOUT ROWID;
    CREATE INDEX batches_by_expiry ON batches (expires_at);
    CREATE TABLE batch_pages (
        batch_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        body TEXT NOT NULL,               -- JSON of the page (page_to_record)
        PRIMARY KEY (batch_id, idx)
    ) WITHOUT ROWID;
    """,
]
register_schema("batches", BATCH_SCHEMA)
# Expired batches deleted per create (DynamoDB's TTL does this there): bounded work a write.
PURGE_BATCH = 20


class SqliteBatchStore:
    """Batches with DynamoDB's rules: a conditional create, a versioned advance."""

    def __init__(self, db: SqliteDatabase, retention_days: int = 30, clock=time.time) -> None:
        self.db = db
        db.migrate()  # the database may have been opened before this module was imported
        self._retention_s = int(timedelta(days=retention_days).total_seconds())
        self._clock = clock

    def create(self, batch: Batch) -> None:
        now = self._clock()
        with self.db.write() as tx:
            if tx.execute("SELECT 1 FROM batches WHERE id = ?", (batch.id,)).fetchone():
                raise AlreadyExists(f"batch {batch.id} exists", batch_id=batch.id)
            tx.execute("INSERT INTO batches (id, body, version, expires_at) VALUES (?, ?, ?, ?)",
                       (batch.id, json.dumps(batch_to_record(batch)), batch.version,
                        int(batch.created_at.timestamp()) + self._retention_s))
            expired = [row["id"] for row in tx.execute(
                "SELECT id FROM batches WHERE expires_at <= ? AND id != ? ORDER BY expires_at"
                " LIMIT ?", (now, batch.id, PURGE_BATCH))]
            for batch_id in expired:
                tx.execute("DELETE FROM batch_pages WHERE batch_id = ?", (batch_id,))
                tx.execute("DELETE FROM batches WHERE id = ?", (batch_id,))

    def get(self, batch_id: str) -> Batch:
        with self.db.snapshot() as conn:
            row = conn.execute("SELECT body FROM batches WHERE id = ?", (batch_id,)).fetchone()
            pages = conn.execute("SELECT body FROM batch_pages WHERE batch_id = ?",
                                 (batch_id,)).fetchall()
        if row is None:
            raise BatchNotFound(batch_id)
        return batch_from_record(json.loads(row["body"]),
                                 [page_from_record(json.loads(p["body"])) for p in pages])

    def advance(self, batch: Batch, *, expected_version: int,
                page: BatchPage | None = None) -> Batch:
        stored = batch.evolve(version=expected_version + 1)
        with self.db.write() as tx:
            updated = tx.execute(
                "UPDATE batches SET body = ?, version = ? WHERE id = ? AND version = ?",
                (json.dumps(batch_to_record(stored)), stored.version, batch.id,
                 expected_version)).rowcount
            if not updated:
                exists = tx.execute("SELECT 1 FROM batches WHERE id = ?", (batch.id,)).fetchone()
                raise StaleBatch(batch.id, expected_version) if exists \
                    else BatchNotFound(batch.id)
            if page is not None:
                tx.execute("INSERT OR REPLACE INTO batch_pages (batch_id, idx, body)"
                           " VALUES (?, ?, ?)",
                           (batch.id, page.index, json.dumps(page_to_record(page))))
        return with_page(stored, page)
