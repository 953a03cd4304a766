"""Bulk actions over the runs a list filter matches: the batch record and its progress."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .clock import iso, parse_iso
from .errors import Conflict, NotFound

ACTIONS = ("replay", "cancel")
# Outcome counters of a batch; `replayed` for replay batches, `cancelled` for cancel batches.
OUTCOMES = ("replayed", "cancelled", "skipped", "failed")


@dataclass(frozen=True)
class BatchPage:
    """What one worker step did: the runs it created (replay) or cancelled, and failures."""

    index: int  # the page number, from 0: one page per step of the worker
    run_ids: tuple[str, ...] = ()  # replay: the new runs; cancel: the cancelled runs
    failures: tuple[dict[str, Any], ...] = ()  # {"runId", "message"}


@dataclass(frozen=True)
class Batch:
    """A bulk replay or cancel: the filter it was given and how far the worker got."""

    id: str
    action: str  # one of ACTIONS
    filter: dict[str, Any]  # the list filters, wire names; `until` capped at creation
    options: dict[str, Any]  # replay: fromStep, again, definition, triggerData
    actor: str
    created_at: datetime
    matched: int  # runs matching at creation (capped by `limit`)
    limit: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    processed: int = 0  # runs handled so far
    cursor: str | None = None  # sort key of the last run handled
    pages: int = 0  # pages committed
    done: bool = False
    finished_at: datetime | None = None
    error: str | None = None  # why the worker gave up, when it did
    version: int = 0  # bumped by every advance: the condition of the next
    run_ids: tuple[str, ...] = ()  # every page's run ids, in order (read from the pages)
    failures: tuple[dict[str, Any], ...] = ()

    def evolve(self, **changes: Any) -> "Batch":
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The API answer of GET /api/automations/batches/{id}."""
        ids_field = "createdRunIds" if self.action == "replay" else "cancelledRunIds"
        return {
            "id": self.id,
            "action": self.action,
            "filter": self.filter,
            "options": {k: v for k, v in self.options.items() if k != "triggerData"},
            "actor": self.actor,
            "createdAt": iso(self.created_at),
            "finishedAt": iso(self.finished_at),
            "matched": self.matched,
            "processed": self.processed,
            **{name: self.counts.get(name, 0) for name in OUTCOMES},
            "done": self.done,
            "error": self.error,
            ids_field: list(self.run_ids),
            "failures": list(self.failures),
        }


class BatchNotFound(NotFound):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"batch {batch_id} not found", batch_id=batch_id)
        self.batch_id = batch_id


class StaleBatch(Conflict):
    """Another worker advanced the batch since it was read (a duplicate delivery)."""

    code = "STALE_BATCH"

    def __init__(self, batch_id: str, version: int) -> None:
        super().__init__(f"batch {batch_id} moved past version {version}")
        self.batch_id = batch_id
        self.version = version


def batch_to_record(batch: Batch) -> dict[str, Any]:
    """The stored fields of a batch (JSON), without its pages."""
    return {
        "id": batch.id, "action": batch.action, "filter": batch.filter,
        "options": batch.options, "actor": batch.actor, "createdAt": iso(batch.created_at),
        "matched": batch.matched, "limit": batch.limit, "counts": batch.counts,
        "processed": batch.processed, "cursor": batch.cursor, "pages": batch.pages,
        "done": batch.done, "finishedAt": iso(batch.finished_at), "error": batch.error,
        "version": batch.version,
    }


def batch_from_record(record: dict[str, Any], pages: list[BatchPage] = ()) -> Batch:
    """A batch from its stored fields and its pages (in any order)."""
    ordered = sorted(pages, key=lambda page: page.index)
    return Batch(
        id=record["id"], action=record["action"], filter=record["filter"],
        options=record["options"], actor=record["actor"],
        created_at=parse_iso(record["createdAt"]), matched=int(record["matched"]),
        limit=int(record["limit"]), counts={k: int(v) for k, v in record["counts"].items()},
        processed=int(record["processed"]), cursor=record.get("cursor"),
        pages=int(record["pages"]), done=bool(record["done"]),
        finished_at=parse_iso(record["finishedAt"]) if record.get("finishedAt") else None,
        error=record.get("error"), version=int(record["version"]),
        run_ids=tuple(run_id for page in ordered for run_id in page.run_ids),
        failures=tuple(failure for page in ordered for failure in page.failures),
    )


def page_to_record(page: BatchPage) -> dict[str, Any]:
    return {"index": page.index, "runIds": list(page.run_ids), "failures": list(page.failures)}


def page_from_record(record: dict[str, Any]) -> BatchPage:
    return BatchPage(index=int(record["index"]), run_ids=tuple(record["runIds"]),
                     failures=tuple(record["failures"]))


def with_page(batch: Batch, page: BatchPage | None) -> Batch:
    """`batch` with `page`'s run ids and failures added (what an advance answers)."""
    if page is None:
        return batch
    return batch.evolve(run_ids=batch.run_ids + page.run_ids,
                        failures=batch.failures + page.failures)
