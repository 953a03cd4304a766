"""MessageQueue on SQLite: the single-machine stand-in for SQS, in the runs database file.

It keeps the SQS semantics the executor and the local pollers rely on: delays (whole seconds,
at most 900; the executor chains longer waits), a visibility timeout per receive, a receive
count, a new receipt handle per receive (only the latest one deletes or changes visibility),
redrive to the dead-letter queue once a message was received `maxReceiveCount` times, and a
retention period. No library offers all of that on SQLite (litequeue and persist-queue have
neither delays nor redrive), so it is one table: a receive claims due rows with one
`UPDATE … RETURNING` inside `BEGIN IMMEDIATE`, so two consumers never get the same receive.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .sqlite_db import SqliteDatabase, register_schema
from .sqs_queue import MAX_RECEIVE_MESSAGES, MAX_WAIT_SECONDS, QueueNotFound, clamp_delay

ACCOUNT_ID = "123456789012"  # as the moto stack's ARNs, so events look the same
DEFAULT_VISIBILITY_S = 30
DEFAULT_RETENTION_S = 4 * 24 * 3600
MAX_VISIBILITY_S = 12 * 3600
# A long poll re-reads the table at least this often, for messages another process sent.
POLL_INTERVAL_S = 1.0
PURGE_EVERY_S = 60.0

QUEUE_SCHEMA = [
    """
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        visibility_timeout INTEGER NOT NULL,
        retention_seconds INTEGER NOT NULL,
        dead_letter TEXT,                 -- the redrive target's name
        max_receive_count INTEGER
    ) WITHOUT ROWID;

    CREATE TABLE queue_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        queue TEXT NOT NULL,
        body TEXT NOT NULL,
        sent_at REAL NOT NULL,            -- epoch seconds
        visible_at REAL NOT NULL,         -- delayed or in flight until then
        receive_count INTEGER NOT NULL DEFAULT 0,
        first_received_at REAL,
        receipt TEXT                      -- the latest receive's handle; NULL before any
    );
    CREATE INDEX queue_messages_due ON queue_messages (queue, visible_at, seq);
    CREATE INDEX queue_messages_age ON queue_messages (queue, sent_at);
    """,
]
register_schema("queue", QUEUE_SCHEMA)


@dataclass(frozen=True)
class QueueAttributes:
    """What CreateQueue's attributes say, for the parts this queue implements."""

    visibility_timeout: int = DEFAULT_VISIBILITY_S
    retention_seconds: int = DEFAULT_RETENTION_S
    dead_letter: str | None = None
    max_receive_count: int | None = None


def create_queue(db: SqliteDatabase, name: str, attributes: QueueAttributes) -> None:
    """Create the queue, or set its attributes when it exists (its messages stay)."""
    db.migrate()
    with db.write() as tx:
        tx.execute(
            "INSERT INTO queues (name, visibility_timeout, retention_seconds,"
            " dead_letter, max_receive_count) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET visibility_timeout = excluded.visibility_timeout,"
            " retention_seconds = excluded.retention_seconds,"
            " dead_letter = excluded.dead_letter, max_receive_count = excluded.max_receive_count",
            (name, attributes.visibility_timeout, attributes.retention_seconds,
             attributes.dead_letter, attributes.max_receive_count))


class _Wakeup:
    """Wakes long polls of one queue in this process when a message is sent or released."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0

    def notify(self, waiters: int | None = None) -> None:
        """Wake `waiters` long polls (all when None). A poll woken for a message another
        consumer took first finds nothing and waits again; one that was not waiting sees the
        generation move and looks before it waits, so no message waits for the poll timer."""
        with self.condition:
            self.generation += 1
            if waiters is None:
                self.condition.notify_all()
            else:
                self.condition.notify(waiters)

    def wait(self, seen: int, timeout: float) -> None:
        with self.condition:
            if self.generation == seen:
                self.condition.wait(timeout)


_wakeups: dict[tuple[str, str], _Wakeup] = {}
_wakeups_lock = threading.Lock()


def _wakeup(path: str, name: str) -> _Wakeup:
    with _wakeups_lock:
        return _wakeups.setdefault((path, name), _Wakeup())


class SqliteQueue:
    """One queue of the database, addressed by name (as SqsQueue is); safe across threads."""

    def __init__(self, name: str, db: SqliteDatabase, *, region: str = "us-east-1",
                 clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.db = db
        self.region = region
        self.clock = clock
        self._attributes: QueueAttributes | None = None
        self._wakeup = _wakeup(db.path, name)
        self._purged_at = 0.0

    @property
    def arn(self) -> str:
        """An SQS-style ARN naming the queue (event records carry it)."""
        return f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{self.name}"

    @property
    def attributes(self) -> QueueAttributes:
        """The queue's attributes, read once; QueueNotFound when it was never created."""
        if self._attributes is None:
            self.db.migrate()
            rows = self.db.read("SELECT * FROM queues WHERE name = ?", (self.name,))
            if not rows:
                raise QueueNotFound(self.name)
            row = rows[0]
            self._attributes = QueueAttributes(
                row["visibility_timeout"], row["retention_seconds"],
                row["dead_letter"], row["max_receive_count"])
        return self._attributes

    def send(self, body: dict[str, Any], delay_seconds: int = 0,
             dedup_id: str | None = None) -> str:
        """Store `body` as JSON, hidden for the delay (0..900 s); returns the message id.
        A send repeating a `dedup_id` whose message is still queued is dropped (the message id
        derives from it), as the FIFO exhausted-runs queue does on SQS."""
        self.attributes  # noqa: B018 - QueueNotFound before anything is written
        delay = clamp_delay(delay_seconds)
        message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.name}:{dedup_id}")) \
            if dedup_id is not None else str(uuid.uuid4())
        now = self.clock()
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        with self.db.write() as tx:
            tx.execute("INSERT OR IGNORE INTO queue_messages (id, queue, body, sent_at, visible_at)"
                       " VALUES (?, ?, ?, ?, ?)", (message_id, self.name, text, now, now + delay))
        # One message: one poll to take it (waking every poll costs each an empty receive).
        self._wakeup.notify(1)
        self._purge_expired(now)
        return message_id

    def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> list[dict[str, Any]]:
        """Up to `max_messages` due messages, each hidden for the visibility timeout, in
        ReceiveMessage's shape; waits up to `wait_seconds` for one (long polling)."""
        count = max(1, min(MAX_RECEIVE_MESSAGES, max_messages))
        deadline = time.monotonic() + max(0, min(MAX_WAIT_SECONDS, wait_seconds))
        while True:
            seen = self._wakeup.generation
            messages = self._claim(count)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            due = self._next_visible_at()
            pause = remaining if due is None else max(0.0, min(remaining, due - self.clock()))
            self._wakeup.wait(seen, min(pause, POLL_INTERVAL_S))

    def delete(self, receipt_handle: str) -> None:
        """Delete a received message; a handle superseded by a later receive deletes nothing."""
        with self.db.write() as tx:
            tx.execute("DELETE FROM queue_messages WHERE queue = ? AND receipt = ?",
                       (self.name, receipt_handle))

    def change_visibility(self, receipt_handle: str, timeout_s: int) -> bool:
        """ChangeMessageVisibility: hide the message for `timeout_s` from now (0: visible
        again). False when the handle is no longer the message's latest."""
        timeout = max(0, min(MAX_VISIBILITY_S, int(timeout_s)))
        with self.db.write() as tx:
            changed = tx.execute(
                "UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND receipt = ?",
                (self.clock() + timeout, self.name, receipt_handle)).rowcount
        if changed and timeout == 0:
            self._wakeup.notify()
        return bool(changed)

    def release_in_flight(self) -> int:
        """Make every received, undeleted message visible now (their consumers are gone: the
        process stopped); returns how many. Delayed messages keep their delay."""
        now = self.clock()
        with self.db.write() as tx:
            released = tx.execute(
                "UPDATE queue_messages SET visible_at = ?"
                " WHERE queue = ? AND visible_at > ? AND receipt IS NOT NULL",
                (now, self.name, now)).rowcount
        if released:
            self._wakeup.notify()
        return released

    def counts(self) -> dict[str, int]:
        """ApproximateNumberOfMessages (visible), …NotVisible (in flight), …Delayed."""
        now = self.clock()
        row = self.db.read(
            "SELECT COALESCE(SUM(visible_at <= ?), 0) AS visible,"
            " COALESCE(SUM(visible_at > ? AND receipt IS NOT NULL), 0) AS in_flight,"
            " COALESCE(SUM(visible_at > ? AND receipt IS NULL), 0) AS delayed"
            " FROM queue_messages WHERE queue = ?", (now, now, now, self.name))[0]
        return {"visible": row["visible"], "inFlight": row["in_flight"],
                "delayed": row["delayed"]}

    def _claim(self, count: int) -> list[dict[str, Any]]:
        attributes = self.attributes
        now = self.clock()
        with self.db.write() as tx:
            if attributes.dead_letter and attributes.max_receive_count:
                # SQS moves a message on the receive after its maxReceiveCount-th one.
                redriven = tx.execute(
                    "UPDATE queue_messages SET queue = ?, receive_count = 0, receipt = NULL,"
                    " first_received_at = NULL, visible_at = ?"
                    " WHERE queue = ? AND visible_at <= ? AND receive_count >= ?",
                    (attributes.dead_letter, now, self.name, now,
                     attributes.max_receive_count)).rowcount
            else:
                redriven = 0
            rows = tx.execute(
                "UPDATE queue_messages SET receive_count = receive_count + 1,"
                " visible_at = ?, first_received_at = COALESCE(first_received_at, ?),"
                " receipt = id || ':' || lower(hex(randomblob(12)))"
                " WHERE seq IN (SELECT seq FROM queue_messages WHERE queue = ?"
                " AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?)"
                " RETURNING seq, id, body, sent_at, receive_count, first_received_at, receipt",
                (now + attributes.visibility_timeout, now, self.name, now, count)).fetchall()
        if redriven:
            _wakeup(self.db.path, attributes.dead_letter).notify()
        return [_message(row) for row in sorted(rows, key=lambda row: row["seq"])]

    def _next_visible_at(self) -> float | None:
        row = self.db.read("SELECT MIN(visible_at) AS due FROM queue_messages WHERE queue = ?",
                           (self.name,))[0]
        return row["due"]

    def _purge_expired(self, now: float) -> None:
        """Drop messages older than the retention period (at most once a minute)."""
        if now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        with self.db.write() as tx:
            tx.execute("DELETE FROM queue_messages WHERE queue = ? AND sent_at < ?",
                       (self.name, now - self.attributes.retention_seconds))


def _message(row: Any) -> dict[str, Any]:
    """A claimed row as ReceiveMessage returns a message (attributes as strings, ms epochs)."""
    return {
        "MessageId": row["id"],
        "ReceiptHandle": row["receipt"],
        "Body": row["body"],
        "MD5OfBody": hashlib.md5(row["body"].encode()).hexdigest(),  # noqa: S324 - as SQS
        "Attributes": {
            "ApproximateReceiveCount": str(row["receive_count"]),
            "SentTimestamp": str(int(row["sent_at"] * 1000)),
            "ApproximateFirstReceiveTimestamp": str(int(row["first_received_at"] * 1000)),
        },
        "MessageAttributes": {},
    }
