"""Use cases of the runs API: list (page or cursor), detail with steps, cancel."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..domain.clock import iso
from ..domain.errors import InvalidTransition, StaleRun, ValidationFailed
from ..domain.model import Run, RunFilter, Step
from ..domain.statuses import RunStatus, StepStatus, is_terminal
from .ports import RunRepository


MAX_CURSOR_LENGTH = 1024  # an issued cursor is about 150 characters


@dataclass(frozen=True)
class RunQuery:
    """A list request: filters plus either a page number or a cursor (never both)."""

    filter: RunFilter = field(default_factory=RunFilter)
    page_size: int = 20
    page: int | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class RunPage:
    """One page of the list answer."""

    runs: list[Run]
    page: int
    page_size: int
    total: int
    next_cursor: str | None

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total / self.page_size)


@dataclass(frozen=True)
class RunDetail:
    """A run with every step of its definition (recorded or synthesized) and its audit trail."""

    run: Run
    steps: list[Step]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.run.to_json(),
            "steps": [step.to_json() for step in self.steps],
            "events": [event.to_json() for event in self.run.events],
        }


def filter_fingerprint(filt: RunFilter) -> str:
    """A short digest of the filters, so a cursor cannot be replayed under other filters."""
    canonical = json.dumps(
        [filt.automation_name, sorted(s.value for s in filt.statuses), filt.trigger_type,
         filt.replay_of, iso(filt.since), iso(filt.until)]
        # Later filters only when set, so cursors issued before them stay valid.
        + ([filt.waiting] if filt.waiting else []) + ([list(filt.data)] if filt.data else []),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _signature(payload: str, key: bytes) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(last: Run, filt: RunFilter, page: int, key: bytes = b"") -> str:
    """Opaque cursor: the last run's sort key, the filter fingerprint and the next page number,
    signed with `key` (HMAC-SHA256), so a cursor the API did not issue is refused unread."""
    body = json.dumps({"k": last.sort_key, "f": filter_fingerprint(filt), "p": page})
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_signature(payload, key)}"


def decode_cursor(cursor: str, filt: RunFilter, key: bytes = b"") -> tuple[str, int]:
    """(sort key, page number) of a cursor; ValidationFailed naming `cursor` when unusable."""
    payload, _, signature = cursor.partition(".")
    if len(cursor) > MAX_CURSOR_LENGTH or not hmac.compare_digest(
            signature.encode(), _signature(payload, key).encode()):
        raise _bad_cursor("cursor is not one this API issued")
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        decoded = json.loads(raw)
        key_, fingerprint, page = decoded["k"], decoded["f"], decoded["p"]
        if not (isinstance(key_, str) and isinstance(page, int) and page >= 1):
            raise ValueError("malformed cursor")
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise _bad_cursor("cursor is not one this API issued") from None
    if fingerprint != filter_fingerprint(filt):
        raise _bad_cursor("cursor was issued for other filters; repeat the same filters")
    return key_, page


def _bad_cursor(message: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": "cursor", "message": message}])


def list_runs(repo: RunRepository, query: RunQuery, cursor_key: bytes = b"") -> RunPage:
    """Runs matching the query, newest first, with the exact total and the next cursor
    (signed with `cursor_key`)."""
    if query.page is not None and query.cursor is not None:
        raise _bad_cursor("use either page or cursor, not both")
    after, page = None, query.page or 1
    if query.cursor is not None:
        after, page = decode_cursor(query.cursor, query.filter, cursor_key)
    offset = 0 if after is not None else (page - 1) * query.page_size
    found = repo.list_runs(query.filter, limit=query.page_size, after=after, offset=offset)
    next_cursor = None
    if found.has_more and found.runs:
        next_cursor = encode_cursor(found.runs[-1], query.filter, page + 1, cursor_key)
    return RunPage(
        runs=found.runs,
        page=page,
        page_size=query.page_size,
        total=repo.count_runs(query.filter),
        next_cursor=next_cursor,
    )


def get_run_detail(repo: RunRepository, run_id: str) -> RunDetail:
    """The run, its recorded steps and the not yet recorded actions of its definition."""
    run, recorded = repo.get_detail(run_id)
    by_index = {step.index: step for step in recorded}
    unreached = StepStatus.SKIPPED if is_terminal(run.status) else StepStatus.PENDING
    for index, action in enumerate(run.definition.get("actions", [])):
        if index not in by_index:
            by_index[index] = Step(
                index=index,
                name=action.get("name", f"step{index}"),
                type=action.get("type", ""),
                operator=action.get("operator", ""),
                status=unreached,
            )
    return RunDetail(run=run, steps=[by_index[i] for i in sorted(by_index)])


def cancel_run(repo: RunRepository, run_id: str, actor: str, now: datetime,
               detail: dict[str, Any] | None = None) -> Run:
    """Cancel a pending or running run; InvalidTransition once it is terminal. `detail` goes
    into the cancel event (a bulk cancel names its batch)."""
    run = repo.get_run(run_id)
    while True:
        # The domain refuses a terminal run (InvalidTransition naming its status).
        cancelled, event = run.transition(RunStatus.CANCELLED, at=now, actor=actor,
                                          event_type="cancel", detail=detail)
        try:
            return repo.update_run(cancelled, expected_status=run.status, event=event)
        except StaleRun as exc:
            run = exc.stored  # another write (same status) since the read: cancel that one
        except InvalidTransition:
            current = repo.get_run(run_id)
            if current.status == run.status:
                raise
            run = current  # admitted (pending → running) since the read: still cancellable
