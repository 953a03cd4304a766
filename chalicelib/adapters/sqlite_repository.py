"""RunRepository on SQLite (the single-machine backend): the same conditional rules as
DynamoRunRepository, each conditional write one `BEGIN IMMEDIATE` transaction.

Tables and indexes are in sqlite_db.STORE_SCHEMA. A list reads one index range per status
asked for (newest first, `createdAt desc, id desc` through `list_sk`), merges them, and
fetches only the page's rows; a total without a date or replay filter is a SUM over the
`run_counts` rows kept by triggers, so neither grows with the number of runs.
"""
from __future__ import annotations

import heapq
import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ..domain.clock import iso, parse_iso
from ..domain.definitions import definition_reference
from ..domain.errors import (
    AlreadyExists, InvalidTransition, RunNotFound, StaleRun, StepConflict,
)
from ..domain.model import Event, Run, RunFilter, RunSlice, Step, Waiting
from ..domain.search import search_key
from ..domain.statuses import RunStatus, StepStatus
from .sqlite_db import SqliteDatabase

ALL_STATUSES = frozenset(RunStatus)
SEARCH_COLUMNS = ("search1", "search2", "search3")
LIVE = "(expires_at IS NULL OR expires_at > :now)"


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class SqliteDefinitions:
    """Definitions stored once per content hash (the same reference as DefinitionStore)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._known: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def store(self, tx: sqlite3.Connection, definition: dict[str, Any]) -> str:
        """The reference of `definition`, stored in the caller's transaction if it is new."""
        ref, text = definition_reference(definition)
        self.store_text(tx, ref, text)
        return ref

    @staticmethod
    def store_text(tx: sqlite3.Connection, ref: str, text: str) -> None:
        """Store a definition already rendered by `definition_reference`, if it is new."""
        tx.execute("INSERT OR IGNORE INTO definitions (ref, body) VALUES (?, ?)", (ref, text))

    def remember(self, ref: str, definition: dict[str, Any]) -> None:
        with self._lock:
            self._known[ref] = definition

    def resolve(self, conn: sqlite3.Connection, refs: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = set(refs)
        with self._lock:
            missing = sorted(wanted - self._known.keys())
        if missing:
            marks = ",".join("?" * len(missing))
            rows = conn.execute(f"SELECT ref, body FROM definitions WHERE ref IN ({marks})",
                                missing).fetchall()
            with self._lock:
                for row in rows:
                    self._known[row["ref"]] = json.loads(row["body"])
        with self._lock:
            return {ref: self._known[ref] for ref in wanted if ref in self._known}


def _run_state(run: Run) -> str:
    return _dump({
        "startedAt": iso(run.started_at),
        "completedAt": iso(run.completed_at),
        "deadlineAt": iso(run.deadline_at),
        "cancelledAt": iso(run.cancelled_at),
        "attempt": run.attempt,
        "error": run.error,
        "resumeFrom": run.resume_from,
        "reusedSteps": list(run.reused_steps),
        "depth": run.depth,
        "holdsSlot": run.holds_slot,
        "waiting": run.waiting_now.to_json() if run.waiting_now else None,
    })


def _event(stored: dict[str, Any]) -> Event:
    return Event(at=parse_iso(stored["at"]), type=stored["type"], from_status=stored.get("from"),
                 to_status=stored.get("to"), actor=stored.get("actor"),
                 detail=stored.get("detail") or {})


def _row_to_run(row: sqlite3.Row, definition: dict[str, Any]) -> Run:
    state = json.loads(row["state"])
    return Run(
        id=row["id"],
        automation_name=row["automation_name"],
        status=RunStatus(row["status"]),
        trigger_type=row["trigger_type"],
        trigger_data=json.loads(row["trigger_data"]),
        created_at=parse_iso(row["created_at"]),
        definition=definition,
        started_at=parse_iso(state["startedAt"]),
        completed_at=parse_iso(state["completedAt"]),
        deadline_at=parse_iso(state["deadlineAt"]),
        attempt=state["attempt"],
        error=state["error"],
        replay_of=row["replay_of"],
        cancelled_at=parse_iso(state["cancelledAt"]),
        resume_from=state["resumeFrom"],
        reused_steps=tuple(state["reusedSteps"]),
        depth=state["depth"],
        holds_slot=state["holdsSlot"],
        events=tuple(_event(stored) for stored in json.loads(row["events"])),
        version=row["version"],
        expires_at=row["expires_at"],
        waiting=Waiting.from_json(state.get("waiting")),
        search_keys=tuple(row[column] for column in SEARCH_COLUMNS if row[column] is not None),
    )


INSERT_RUN = (
    "INSERT INTO runs (id, list_sk, automation_name, status, trigger_type, replay_of,"
    " created_at, expires_at, version, definition_ref, trigger_data, state, events,"
    " waiting_kind, search1, search2, search3)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_STEP = "INSERT INTO steps (run_id, idx, body, expires_at) VALUES (?, ?, ?, ?)"


def _waiting_kind(run: Run) -> str | None:
    return run.waiting_now.kind if run.waiting_now else None


def _search_columns(run: Run) -> list[str | None]:
    keys = list(run.search_keys)[:len(SEARCH_COLUMNS)]
    return keys + [None] * (len(SEARCH_COLUMNS) - len(keys))


def _run_row(run: Run, ref: str) -> tuple:
    """The runs row of a new run (INSERT_RUN's values), its definition stored under `ref`."""
    return (run.id, run.sort_key, run.automation_name, run.status.value, run.trigger_type,
            run.replay_of, iso(run.created_at), run.expires_at, run.version, ref,
            _dump(run.trigger_data), _run_state(run),
            _dump([event.to_json() for event in run.events]), _waiting_kind(run),
            *_search_columns(run))


def _step_rows(run: Run, steps: Iterable[Step]) -> list[tuple]:
    return [(run.id, step.index, _step_body(step), run.expires_at) for step in steps]


def _step_body(step: Step) -> str:
    return _dump({
        "name": step.name,
        "type": step.type,
        "operator": step.operator,
        "status": step.status.value,
        "startedAt": iso(step.started_at),
        "completedAt": iso(step.completed_at),
        "attempt": step.attempt,
        "attempts": list(step.attempts),
        "output": step.output,
        "error": step.error,
        "reusedFrom": step.reused_from,
        "claimToken": step.claim_token,
        "nextAttemptAt": iso(step.next_attempt_at),
        "wokenAt": iso(step.woken_at),
        "revoked": list(step.revoked),
    })


def _row_to_step(row: sqlite3.Row) -> Step:
    body = json.loads(row["body"])
    return Step(
        index=row["idx"],
        name=body["name"],
        type=body["type"],
        operator=body["operator"],
        status=StepStatus(body["status"]),
        started_at=parse_iso(body["startedAt"]),
        completed_at=parse_iso(body["completedAt"]),
        attempt=body["attempt"],
        attempts=tuple(body["attempts"]),
        output=body["output"],
        error=body["error"],
        reused_from=body["reusedFrom"],
        claim_token=body["claimToken"],
        next_attempt_at=parse_iso(body["nextAttemptAt"]),
        woken_at=parse_iso(body.get("wokenAt")),
        revoked=tuple(body.get("revoked") or ()),
        lease_until=parse_iso(row["lease_until"]) if "lease_until" in row.keys() else None,
    )


@dataclass(frozen=True)
class _Plan:
    """The index a list reads and one equality condition set per range (one per status)."""

    index: str
    ranges: tuple[dict[str, str], ...]
    residual: str = ""  # conditions not in the index (next to replay_of, waiting, search)
    indexes: tuple[str, ...] = ()  # one index per range when they differ (search columns)

    def index_of(self, position: int) -> str:
        return self.indexes[position] if self.indexes else self.index


def _statuses(filt: RunFilter) -> tuple[str, ...]:
    statuses = tuple(dict.fromkeys(RunStatus(status).value for status in filt.statuses))
    # Every status asked for is no status filter at all: one range instead of eight.
    return () if set(statuses) == {status.value for status in ALL_STATUSES} else statuses


def _residual(filt: RunFilter, params: dict[str, Any], indexed: str) -> str:
    """SQL conditions for every filter but the one the index (`indexed`) serves."""
    statuses = _statuses(filt)
    residual = []
    if filt.automation_name is not None:
        params["automation_name"] = filt.automation_name
        residual.append("automation_name = :automation_name")
    if filt.trigger_type is not None:
        params["trigger_type"] = filt.trigger_type
        residual.append("trigger_type = :trigger_type")
    if statuses:
        params.update({f"status{i}": status for i, status in enumerate(statuses)})
        marks = ", ".join(f":status{i}" for i in range(len(statuses)))
        residual.append(f"status IN ({marks})")
    if filt.waiting is not None and indexed != "waiting":
        params["waiting"] = filt.waiting
        residual.append("waiting_kind = :waiting")
    if filt.data is not None and indexed != "data":
        params["search"] = search_key(*filt.data)
        residual.append(f":search IN ({', '.join(SEARCH_COLUMNS)})")
    return "".join(f" AND {condition}" for condition in residual)


def _plan(filt: RunFilter, params: dict[str, Any]) -> _Plan:
    """The index serving `filt`: replay_of, else a search key, else waiting, else the
    automation/status/trigger combination; the rest are residual conditions."""
    statuses = _statuses(filt)
    if filt.replay_of is not None:
        params["replay_of"] = filt.replay_of
        return _Plan("runs_by_replay", ({"replay_of": ":replay_of"},),
                     _residual(filt, params, "replay"))
    if filt.data is not None:
        params["search"] = search_key(*filt.data)
        return _Plan("runs_by_search1", tuple({column: ":search"} for column in SEARCH_COLUMNS),
                     _residual(filt, params, "data"),
                     indexes=tuple(f"runs_by_{column}" for column in SEARCH_COLUMNS))
    if filt.waiting is not None:
        params["waiting"] = filt.waiting
        return _Plan("runs_by_waiting", ({"waiting_kind": ":waiting"},),
                     _residual(filt, params, "waiting"))
    fixed: dict[str, str] = {}
    if filt.automation_name is not None:
        params["automation_name"] = filt.automation_name
        fixed["automation_name"] = ":automation_name"
    if filt.trigger_type is not None:
        params["trigger_type"] = filt.trigger_type
        fixed["trigger_type"] = ":trigger_type"
    if statuses:
        params.update({f"status{i}": status for i, status in enumerate(statuses)})
        ranges = tuple({**fixed, "status": f":status{i}"} for i in range(len(statuses)))
    else:
        ranges = (fixed,)
    parts = [name for name, column in (("automation", "automation_name"), ("status", "status"),
                                       ("trigger", "trigger_type")) if column in ranges[0]]
    return _Plan("runs_by_" + ("_".join(parts) or "all"), ranges)


def _bounds(filt: RunFilter, after: str | None, params: dict[str, Any]) -> str:
    """Conditions on list_sk for since/until and the cursor."""
    conditions = ""
    if filt.since is not None:
        params["lower"] = iso(filt.since)
        conditions += " AND list_sk >= :lower"
    if filt.until is not None:
        params["upper"] = iso(filt.until) + "$"  # past every "<until>#<id>"
        conditions += " AND list_sk < :upper"
    if after is not None:
        params["after"] = after
        conditions += " AND list_sk < :after"
    return conditions


def range_sql(plan: _Plan, equalities: dict[str, str], bounds: str,
              descending: bool = True, position: int = 0) -> str:
    """The query reading one index range of a list, newest first (`:limit` rows)."""
    where = "".join(f" AND {column} = {mark}" for column, mark in equalities.items())
    return (f"SELECT id, list_sk FROM runs INDEXED BY {plan.index_of(position)}"
            f" WHERE 1{where}{bounds}{plan.residual} AND {LIVE}"
            f" ORDER BY list_sk {'DESC' if descending else 'ASC'} LIMIT :limit")


def list_queries(filt: RunFilter, after: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The (SQL, parameters) a list of `filt` runs: one per status range (EXPLAIN in tests)."""
    params: dict[str, Any] = {"now": 0, "limit": 21}
    plan = _plan(filt, params)
    bounds = _bounds(filt, after, params)
    return [(range_sql(plan, equalities, bounds, position=position), params)
            for position, equalities in enumerate(plan.ranges)]


SECOND, MINUTE, HOUR, DAY = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1),
                             timedelta(days=1))
# Bucket levels, finest first: (level, unit, characters of createdAt naming a bucket).
LEVELS = (("s", SECOND, 19), ("m", MINUTE, 16), ("h", HOUR, 13), ("d", DAY, 10))
BUCKET_WIDTH = {level: width for level, _, width in LEVELS}


def _ms(value: datetime) -> datetime:
    """`value` as stored: UTC, whole milliseconds (what `iso` keeps)."""
    return parse_iso(iso(value))


def _after_ms(value: datetime | None) -> datetime | None:
    """The exclusive end of an inclusive `until` (None: unbounded)."""
    return None if value is None else _ms(value) + timedelta(milliseconds=1)


def _floor(value: datetime, unit: timedelta) -> datetime:
    value = value.replace(microsecond=0)
    if unit >= MINUTE:
        value = value.replace(second=0)
    if unit >= HOUR:
        value = value.replace(minute=0)
    if unit >= DAY:
        value = value.replace(hour=0)
    return value


def _ceil(value: datetime, unit: timedelta) -> datetime:
    floor = _floor(value, unit)
    return floor if floor == value else floor + unit


def _buckets(first: datetime | None, last: datetime | None):
    """(level, start, stop) pieces covering [first, last) with few buckets: seconds up to the
    first whole minute, minutes up to the first hour, hours up to the first day, days, and the
    same back down to `last`. Both ends are whole seconds; None is unbounded."""
    pieces = []
    for (level, _, _), (_, coarser, _) in zip(LEVELS, LEVELS[1:]):
        up = _ceil(first, coarser) if first is not None else None
        down = _floor(last, coarser) if last is not None else None
        if up is not None and down is not None and up >= down:
            return pieces + [(level, first, last)]  # no whole coarser bucket inside
        if first is not None:
            pieces.append((level, first, up))
            first = up
        if last is not None:
            pieces.append((level, down, last))
            last = down
    return pieces + [("d", first, last)]


class SqliteRunRepository:
    """RunRepository on one SQLite database (see module docstring)."""

    def __init__(self, db: SqliteDatabase, *, retention_days: int = 30, clock=time.time) -> None:
        self.db = db
        self._clock = clock
        self._retention_s = retention_days * 86400
        self._definitions = SqliteDefinitions(db)

    # -- reading rows ------------------------------------------------------------------

    def _runs(self, conn: sqlite3.Connection, rows: Sequence[sqlite3.Row]) -> list[Run]:
        definitions = self._definitions.resolve(conn, {row["definition_ref"] for row in rows})
        return [_row_to_run(row, definitions.get(row["definition_ref"], {})) for row in rows]

    def _live_row(self, conn: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None or (row["expires_at"] is not None and row["expires_at"] <= self._clock()):
            raise RunNotFound(run_id)
        return row

    def create_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        stored = replace(run, version=1)
        # Rendered before the write lock is taken: every writer of the process queues on it.
        ref, definition = definition_reference(run.definition)
        row, step_rows = _run_row(stored, ref), _step_rows(run, steps)
        with self.db.write() as tx:
            existing = tx.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()
            if existing is not None:
                raise AlreadyExists(f"run {run.id} exists", status=existing["status"])
            self._definitions.store_text(tx, ref, definition)
            tx.execute(INSERT_RUN, row)
            tx.executemany(INSERT_STEP, step_rows)
        self._definitions.remember(ref, run.definition)

    def insert_many(self, tx: sqlite3.Connection,
                    runs: Iterable[tuple[Run, Sequence[Step]]]) -> int:
        """Insert new runs and their steps in the caller's transaction, the rows `create_run`
        writes, without its existence check (benchmarks filling a database; not a port)."""
        rows, step_rows, refs = [], [], {}
        for run, steps in runs:
            # Runs of one automation share its definition object (kept here, so its id holds).
            key = id(run.definition)
            if key not in refs:
                refs[key] = (run.definition, self._definitions.store(tx, run.definition))
            rows.append(_run_row(replace(run, version=1), refs[key][1]))
            step_rows += _step_rows(run, steps)
        tx.executemany(INSERT_RUN, rows)
        tx.executemany(INSERT_STEP, step_rows)
        return len(rows)

    def get_run(self, run_id: str) -> Run:
        # One statement is its own consistent snapshot (definitions never change): no
        # BEGIN/COMMIT around it, as the executor reads the run after every claim.
        conn = self.db.connection()
        return self._runs(conn, [self._live_row(conn, run_id)])[0]

    def get_detail(self, run_id: str) -> tuple[Run, list[Step]]:
        with self.db.snapshot() as conn:
            run = self._runs(conn, [self._live_row(conn, run_id)])[0]
            rows = conn.execute("SELECT idx, body, lease_until FROM steps WHERE run_id = ?"
                                " ORDER BY idx",
                                (run_id,)).fetchall()
        return run, [_row_to_step(row) for row in rows]

    def update_run(
        self, run: Run, *, expected_status: RunStatus, event: Event | None = None
    ) -> Run:
        """Write the mutable fields if the stored, live run is still in `expected_status` and
        at `run.version` (StaleRun with the stored run when another write came first). The
        status change itself was decided by the domain (Run.transition)."""
        values = {"status": run.status.value, "state": _run_state(run),
                  "waiting_kind": _waiting_kind(run),
                  "expires_at": run.expires_at, "id": run.id,
                  "event": _dump(event.to_json()) if event is not None else None}
        with self.db.write() as tx:
            current = self._live_row(tx, run.id)
            if current["status"] != expected_status.value:
                raise InvalidTransition(run.id, current["status"], run.status.value)
            if current["version"] != run.version:
                raise StaleRun(self._runs(tx, [current])[0])
            rows = tx.execute(
                "UPDATE runs SET status = :status, state = :state, expires_at = :expires_at,"
                " waiting_kind = :waiting_kind,"
                " version = version + 1, events = CASE WHEN :event IS NULL THEN events"
                " ELSE json_insert(events, '$[#]', json(:event)) END WHERE id = :id"
                " RETURNING *", values).fetchall()
        return self._runs(self.db.connection(), rows)[0]  # after the commit: the lock is free

    # -- steps -------------------------------------------------------------------------

    def _stored_step(self, tx: sqlite3.Connection, run_id: str, index: int):
        return tx.execute("SELECT idx, body, lease_until, expires_at FROM steps"
                          " WHERE run_id = ? AND idx = ?", (run_id, index)).fetchone()

    def _step_expiry(self) -> int:
        return int(self._clock()) + self._retention_s

    def claim_step(
        self, run_id: str, step: Step, *, token: str, now: datetime, lease_until: datetime
    ) -> Step:
        """Claim when absent, pending, or running with no live lease and no future retry."""
        at = iso(now)
        with self.db.write() as tx:
            row = self._stored_step(tx, run_id, step.index)
            stored = _row_to_step(row) if row is not None else None
            if stored is not None:
                free = row["lease_until"] is None or row["lease_until"] <= at
                due = stored.next_attempt_at is None or iso(stored.next_attempt_at) <= at
                if not (stored.status == StepStatus.PENDING
                        or (stored.status == StepStatus.RUNNING and free and due)):
                    raise StepConflict(run_id, step.index, stored.status.value)
            claimed = replace(
                step,
                status=StepStatus.RUNNING,
                claim_token=token,
                attempt=(stored.attempt if stored else 0) + 1,
                attempts=stored.attempts if stored else step.attempts,
                started_at=(stored.started_at if stored and stored.started_at
                            else step.started_at),
                next_attempt_at=None,
                lease_until=lease_until,
            )
            expiry = row["expires_at"] if row is not None and row["expires_at"] is not None \
                else self._step_expiry()
            tx.execute(
                "INSERT INTO steps (run_id, idx, body, lease_until, expires_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, idx) DO UPDATE SET"
                " body = excluded.body, lease_until = excluded.lease_until,"
                " expires_at = excluded.expires_at",
                (run_id, step.index, _step_body(claimed), iso(lease_until), expiry))
        return claimed

    def write_step(
        self,
        run_id: str,
        step: Step,
        *,
        expect: Collection[StepStatus | None],
        token: str | None = None,
    ) -> Step:
        """Replace the step if its stored status is in `expect` (and the token matches)."""
        body, expected = _step_body(step), set(expect)  # rendered before the write lock
        with self.db.write() as tx:
            row = self._stored_step(tx, run_id, step.index)
            stored = _row_to_step(row) if row is not None else None
            status = stored.status if stored else None
            if status not in expected or (
                token is not None and (stored is None or stored.claim_token != token)
            ):
                raise StepConflict(run_id, step.index, status.value if status else None)
            tx.execute(
                "INSERT INTO steps (run_id, idx, body, lease_until, expires_at)"
                " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (run_id, idx) DO UPDATE SET"
                " body = excluded.body, lease_until = NULL, expires_at = excluded.expires_at",
                (run_id, step.index, body, self._step_expiry()))
        return replace(step, lease_until=None)

    # -- lists and counts --------------------------------------------------------------

    def _range_keys(self, conn, plan: _Plan, equalities: dict[str, str], bounds: str,
                    params: dict[str, Any], limit: int, descending: bool = True,
                    position: int = 0):
        sql = range_sql(plan, equalities, bounds, descending, position)
        return conn.execute(sql, {**params, "limit": limit}).fetchall()

    def list_runs(
        self, filt: RunFilter, *, limit: int, after: str | None = None, offset: int = 0
    ) -> RunSlice:
        params: dict[str, Any] = {"now": self._clock()}
        plan = _plan(filt, params)
        bounds = _bounds(filt, after, params)
        wanted = offset + limit + 1
        with self.db.snapshot() as conn:
            streams = [self._range_keys(conn, plan, equalities, bounds, params, wanted,
                                        position=position)
                       for position, equalities in enumerate(plan.ranges)]
            merged = heapq.merge(*streams, key=lambda row: row["list_sk"], reverse=True)
            taken = [row["id"] for row in itertools.islice(merged, wanted)]
            runs = self._fetch(conn, taken[offset:offset + limit])
        return RunSlice(runs=runs, has_more=len(taken) > offset + limit)

    def _fetch(self, conn: sqlite3.Connection, run_ids: list[str]) -> list[Run]:
        if not run_ids:
            return []
        marks = ",".join("?" * len(run_ids))
        rows = conn.execute(f"SELECT * FROM runs WHERE id IN ({marks})", run_ids).fetchall()
        found = {run.id: run for run in self._runs(conn, rows)}
        return [found[run_id] for run_id in run_ids if run_id in found]

    def count_runs(self, filt: RunFilter) -> int:
        """Exact count, whatever the number of runs:
        - without since/until/replay_of: a SUM over the `run_counts` rows of the automation,
          trigger type and statuses asked for;
        - with since/until: a SUM over the `run_time_counts` day, hour, minute and second
          buckets the window covers whole, plus an index COUNT of the runs in its partial
          first and last second (live runs only);
        - with replay_of: an index COUNT over the replays of that run.
        Runs past their expiry count in the buckets until the sweeper deletes them (each
        minute), as in DynamoDB's counters, while lists hide them at once."""
        if filt.replay_of is not None or filt.waiting is not None or filt.data is not None:
            return self._count_index(filt, filt.since, _after_ms(filt.until))
        if filt.since is None and filt.until is None:
            conditions, params = self._bucket_filters(filt)
            row = self.db.read(f"SELECT COALESCE(SUM(n), 0) AS total FROM run_counts"
                               f" WHERE 1{conditions}", params)[0]
            return int(row["total"])
        low = _ms(filt.since) if filt.since is not None else None
        high = _after_ms(filt.until)  # exclusive
        if low is not None and high is not None and high <= low:
            return 0
        first = _ceil(low, SECOND) if low is not None else None
        last = _floor(high, SECOND) if high is not None else None
        if first is not None and last is not None and first >= last:
            return self._count_index(filt, low, high)  # within two seconds: all by index
        total = 0
        if low is not None and low < first:
            total += self._count_index(filt, low, first)
        if high is not None and last < high:
            total += self._count_index(filt, last, high)
        conditions, params = self._bucket_filters(filt)
        for level, start, stop in _buckets(first, last):
            width = BUCKET_WIDTH[level]
            where = " AND bucket >= ?" * (start is not None) + " AND bucket < ?" * (stop is not None)
            bounds = [iso(value)[:width] for value in (start, stop) if value is not None]
            total += self.db.read(
                f"SELECT COALESCE(SUM(n), 0) FROM run_time_counts WHERE level = ?{where}"
                f"{conditions}", [level, *bounds, *params])[0][0]
        return total

    @staticmethod
    def _bucket_filters(filt: RunFilter) -> tuple[str, list[Any]]:
        conditions, params = "", []
        if filt.automation_name is not None:
            conditions += " AND automation_name = ?"
            params.append(filt.automation_name)
        if filt.trigger_type is not None:
            conditions += " AND trigger_type = ?"
            params.append(filt.trigger_type)
        statuses = _statuses(filt)
        if statuses:
            conditions += f" AND status IN ({','.join('?' * len(statuses))})"
            params += statuses
        return conditions, params

    def _count_index(self, filt: RunFilter, low: datetime | None, high: datetime | None) -> int:
        """COUNT of live runs matching `filt` created in [low, high), on the list's index."""
        params: dict[str, Any] = {"now": self._clock()}
        plan = _plan(filt, params)
        bounds = ""
        if low is not None:
            params["lower"] = iso(low)
            bounds += " AND list_sk >= :lower"
        if high is not None:
            params["upper"] = iso(high)  # "<high>#<id>" sorts after it: runs at `high` excluded
            bounds += " AND list_sk < :upper"
        total = 0
        with self.db.snapshot() as conn:
            for position, equalities in enumerate(plan.ranges):
                where = "".join(f" AND {column} = {mark}" for column, mark in equalities.items())
                total += conn.execute(
                    f"SELECT COUNT(*) FROM runs INDEXED BY {plan.index_of(position)}"
                    f" WHERE 1{where}{bounds}{plan.residual} AND {LIVE}", params).fetchone()[0]
        return total

    def runs_in_status(self, status: RunStatus, *, automation_name: str | None = None,
                       limit: int = 100, oldest_first: bool = True) -> list[Run]:
        params: dict[str, Any] = {"now": self._clock()}
        plan = _plan(RunFilter(automation_name=automation_name, statuses=(status,)), params)
        with self.db.snapshot() as conn:
            rows = self._range_keys(conn, plan, plan.ranges[0], "", params, limit,
                                    descending=not oldest_first)
            return self._fetch(conn, [row["id"] for row in rows])

    # -- retention ---------------------------------------------------------------------

    def expired_runs(self, now: datetime, limit: int) -> list[str]:
        """Ids of up to `limit` runs expired at `now`, oldest first (the expiry index)."""
        rows = self.db.read("SELECT id FROM runs INDEXED BY runs_by_expiry"
                            " WHERE expires_at IS NOT NULL AND expires_at <= ?"
                            " ORDER BY list_sk LIMIT ?", (int(now.timestamp()), limit))
        return [row["id"] for row in rows]

    def delete_run(self, run_id: str) -> None:
        """Delete the run and its steps in one transaction (the counts follow by trigger)."""
        with self.db.write() as tx:
            tx.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
            tx.execute("DELETE FROM runs WHERE id = ?", (run_id,))
