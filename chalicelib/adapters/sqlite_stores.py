"""Markers, API tokens, concurrency slots and rate limits on SQLite, with the DynamoDB adapters' rules."""
from __future__ import annotations

import json
import math
import time
from datetime import datetime
from typing import Any

from ..domain.clock import iso, parse_iso
from ..domain.rate_limit import Allowance, Verdict, admit
from ..services.ports import TokenRecord
from .sqlite_db import SqliteDatabase

# Expired markers deleted per put_once (DynamoDB's TTL does this there): the table stays
# bounded at a constant cost per write.
PURGE_BATCH = 20


class SqliteMarkers:
    """First writer wins until expiry; an expired marker counts as absent (as on DynamoDB)."""

    def __init__(self, db: SqliteDatabase, clock=time.time) -> None:
        self.db = db
        self._clock = clock

    def put_once(self, key: str, value: dict[str, Any], ttl_seconds: int) -> dict[str, Any] | None:
        now = self._clock()
        with self.db.write() as tx:
            row = tx.execute("SELECT value, expires_at FROM markers WHERE key = ?",
                             (key,)).fetchone()
            if row is not None and row["expires_at"] > now:
                return json.loads(row["value"])
            tx.execute("INSERT INTO markers (key, value, expires_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                       " expires_at = excluded.expires_at",
                       (key, json.dumps(value), math.ceil(now + ttl_seconds)))
            tx.execute("DELETE FROM markers WHERE key IN (SELECT key FROM markers"
                       " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)", (now, PURGE_BATCH))
        return None

    def get(self, key: str) -> dict[str, Any] | None:
        rows = self.db.read("SELECT value FROM markers WHERE key = ? AND expires_at > ?",
                            (key, self._clock()))
        return json.loads(rows[0]["value"]) if rows else None

    def delete(self, key: str, only_if: dict[str, Any] | None = None) -> bool:
        with self.db.write() as tx:
            row = tx.execute("SELECT value FROM markers WHERE key = ?", (key,)).fetchone()
            if row is None or (only_if is not None and json.loads(row["value"]) != only_if):
                return False
            tx.execute("DELETE FROM markers WHERE key = ?", (key,))
        return True


class SqliteTokenStore:
    """API tokens by the SHA-256 of their secret."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def put(self, token_hash: str, record: TokenRecord) -> None:
        with self.db.write() as tx:
            tx.execute(
                "INSERT INTO tokens (token_hash, token_id, role, created_at, description,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (token_hash) DO UPDATE SET"
                " token_id = excluded.token_id, role = excluded.role,"
                " created_at = excluded.created_at, description = excluded.description,"
                " expires_at = excluded.expires_at, last_used_at = NULL",
                (token_hash, record.token_id, record.role, iso(record.created_at),
                 record.description, iso(record.expires_at)))

    def find(self, token_hash: str) -> TokenRecord | None:
        rows = self.db.read("SELECT * FROM tokens WHERE token_hash = ?", (token_hash,))
        return _token(rows[0]) if rows else None

    def list(self) -> list[TokenRecord]:
        return [_token(row) for row in self.db.read("SELECT * FROM tokens ORDER BY token_id")]

    def revoke(self, token_id: str) -> bool:
        with self.db.write() as tx:
            return tx.execute("DELETE FROM tokens WHERE token_id = ?", (token_id,)).rowcount > 0

    def touch(self, token_id: str, at: datetime) -> None:
        with self.db.write() as tx:
            tx.execute("UPDATE tokens SET last_used_at = ? WHERE token_id = ?",
                       (iso(at), token_id))


def _token(row) -> TokenRecord:
    return TokenRecord(token_id=row["token_id"], role=row["role"],
                       created_at=parse_iso(row["created_at"]), description=row["description"],
                       expires_at=parse_iso(row["expires_at"]),
                       last_used_at=parse_iso(row["last_used_at"]))


class SqliteSlots:
    """Concurrency slots: one row per (automation, holder); acquire checks the count."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def acquire(self, automation: str, run_id: str, limit: int) -> bool:
        with self.db.write() as tx:
            if tx.execute("SELECT 1 FROM slots WHERE automation = ? AND run_id = ?",
                          (automation, run_id)).fetchone():
                return True
            held = tx.execute("SELECT COUNT(*) FROM slots WHERE automation = ?",
                              (automation,)).fetchone()[0]
            if held >= limit:
                return False
            tx.execute("INSERT INTO slots (automation, run_id) VALUES (?, ?)",
                       (automation, run_id))
        return True

    def release(self, automation: str, run_id: str) -> None:
        with self.db.write() as tx:
            tx.execute("DELETE FROM slots WHERE automation = ? AND run_id = ?",
                       (automation, run_id))

    def holders(self, automation: str) -> set[str]:
        return {row["run_id"] for row in
                self.db.read("SELECT run_id FROM slots WHERE automation = ?", (automation,))}


class SqliteRateLimiter:
    """A bucket per key: its arrival time, read and written in one BEGIN IMMEDIATE
    transaction (the write lock is held from the read on, so concurrent takes serialise)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def take(self, key: str, allowance: Allowance, now_us: int) -> Verdict:
        with self.db.write() as tx:
            row = tx.execute("SELECT tat FROM rate_buckets WHERE key = ?", (key,)).fetchone()
            verdict, tat = admit(row["tat"] if row else None, now_us, allowance)
            if tat is not None:
                tx.execute("INSERT INTO rate_buckets (key, tat) VALUES (?, ?)"
                           " ON CONFLICT (key) DO UPDATE SET tat = excluded.tat", (key, tat))
        return verdict
