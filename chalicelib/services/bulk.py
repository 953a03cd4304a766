"""Bulk replay and cancel: a batch over the runs a list filter matches.

The API records the batch and sends one `{"kind": "batch"}` message on the step queue; the
step worker handles a page of `bulk_rate_per_s` runs per message, commits the page (counts,
cursor, created ids) with a versioned write and sends the next message a second later. The
page query is the list query, cursor after cursor (no scan), with `until` capped at the
batch's creation, so runs created meanwhile (the replays themselves) never join it.

Exactly once per (batch, run): a replay is created through the markers (`start_once`, keyed
by batch and run), so a page redone after a crash finds the replays it already made; a
cancel recognises its own event in the run's trail. Across batches, a replay claims the
original (`bulk-replay:<run id>`), and a run whose trail shows a replay is skipped, unless
the batch says `again`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ..domain.batches import Batch, BatchNotFound, BatchPage, StaleBatch
from ..domain.clock import iso, parse_iso
from ..domain.errors import (
    AlreadyExists, DomainError, Forbidden, InvalidTransition, ValidationFailed,
)
from ..domain.model import Run, RunFilter, RunSlice
from ..domain.statuses import RunStatus, is_terminal
from ..observability import logger
from . import lifecycle
from .replay import replay
from .runs import cancel_run
from .trigger import IDEMPOTENCY_TTL_S

MESSAGE_KIND = "batch"
PREVIEW_IDS = 20  # ids a dry run shows
PACE_S = 1  # between two pages of a batch


@dataclass(frozen=True)
class BulkRequest:
    """A bulk replay or cancel as the API received it (validated)."""

    action: str  # "replay" | "cancel"
    filter: RunFilter
    limit: int
    from_step: str | None = None
    again: bool = False
    definition: str = "latest"
    trigger_data: Any = None
    replaces_trigger_data: bool = False


def filter_to_wire(filt: RunFilter) -> dict[str, Any]:
    """The list filters under their query-string names (the stored and shown form)."""
    wire = {"automationName": filt.automation_name,
            "status": [status.value for status in filt.statuses],
            "triggerType": filt.trigger_type, "replayOf": filt.replay_of,
            "since": iso(filt.since), "until": iso(filt.until)}
    return {key: value for key, value in wire.items() if value not in (None, [])}


def filter_from_wire(wire: dict[str, Any]) -> RunFilter:
    return RunFilter(automation_name=wire.get("automationName"),
                     statuses=tuple(RunStatus(s) for s in wire.get("status", [])),
                     trigger_type=wire.get("triggerType"), replay_of=wire.get("replayOf"),
                     since=parse_iso(wire.get("since")), until=parse_iso(wire.get("until")))


def _capped(filt: RunFilter, now: datetime) -> RunFilter:
    """The filter with `until` at most `now`: runs created later never join the batch."""
    until = now if filt.until is None or filt.until > now else filt.until
    return replace(filt, until=until)


def _check(request: BulkRequest, is_admin: bool, max_runs: int) -> None:
    if request.replaces_trigger_data and not is_admin:
        raise Forbidden("replacing triggerData needs the admin role")
    if request.limit > max_runs:
        raise ValidationFailed(f"limit is over {max_runs}", [
            {"field": "limit", "message": f"at most {max_runs} runs a batch"}])


def preview(deps, request: BulkRequest, *, is_admin: bool) -> dict[str, Any]:
    """A dry run: how many runs match (capped by `limit`) and the first ids; changes nothing."""
    _check(request, is_admin, deps.settings.bulk_max_runs)
    filt = _capped(request.filter, deps.clock())
    total = deps.repo.count_runs(filt)
    first = deps.repo.list_runs(filt, limit=min(PREVIEW_IDS, request.limit))
    return {"dryRun": True, "action": request.action, "filter": filter_to_wire(filt),
            "matched": min(total, request.limit), "total": total,
            "firstIds": [run.id for run in first.runs]}


def start(deps, request: BulkRequest, *, actor: str, is_admin: bool,
          idempotency_key: str | None = None) -> tuple[Batch, bool]:
    """Record the batch and send its first message; (batch, created?). The same
    Idempotency-Key within 24 h answers the same batch (and nudges its worker again)."""
    _check(request, is_admin, deps.settings.bulk_max_runs)
    batch_id = str(uuid.uuid4())
    if idempotency_key:
        existing = deps.markers.put_once(f"batch:{idempotency_key}", {"batchId": batch_id},
                                         IDEMPOTENCY_TTL_S)
        if existing is not None:
            batch_id = existing["batchId"]
            try:
                batch = deps.batches.get(batch_id)
            except BatchNotFound:  # the first request died between the key and the batch
                pass
            else:
                if not batch.done:
                    _send(deps, batch.id)
                return batch, False
    batch = _new_batch(deps, request, batch_id, actor)
    try:
        deps.batches.create(batch)
    except AlreadyExists:  # a concurrent retry with the same key created it
        return deps.batches.get(batch_id), False
    _send(deps, batch.id)
    logger.info("batch started", extra={"batch_id": batch.id, "action": batch.action,
                                        "matched": batch.matched})
    return batch, True


def _new_batch(deps, request: BulkRequest, batch_id: str, actor: str) -> Batch:
    now = deps.clock()
    filt = _capped(request.filter, now)
    options: dict[str, Any] = {}
    if request.action == "replay":
        options = {"fromStep": request.from_step, "again": request.again,
                   "definition": request.definition}
        if request.replaces_trigger_data:
            options["triggerData"] = request.trigger_data
    return Batch(id=batch_id, action=request.action, filter=filter_to_wire(filt),
                 options=options, actor=actor, created_at=now,
                 matched=min(deps.repo.count_runs(filt), request.limit), limit=request.limit)


def _send(deps, batch_id: str, delay_seconds: int = 0) -> None:
    deps.step_queue.send({"kind": MESSAGE_KIND, "batchId": batch_id},
                         delay_seconds=delay_seconds)


def get(deps, batch_id: str) -> Batch:
    """The batch with its progress and the ids of the runs it created or cancelled."""
    return deps.batches.get(batch_id)


def process_message(deps, message: dict[str, Any]) -> None:
    """One step of a batch's worker: a page of runs, committed, then the next message."""
    try:
        batch = deps.batches.get(message["batchId"])
    except BatchNotFound:
        logger.warning("message for an unknown batch", extra={"batch_id": message["batchId"]})
        return
    if batch.done:
        return
    size = min(deps.settings.bulk_rate_per_s, batch.limit - batch.processed)
    found = (deps.repo.list_runs(filter_from_wire(batch.filter), limit=size, after=batch.cursor)
             if size > 0 else RunSlice([], False))
    counts, run_ids, failures = dict(batch.counts), [], []
    act = _replay_one if batch.action == "replay" else _cancel_one
    for run in found.runs:
        outcome, detail = act(deps, batch, run)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome in ("replayed", "cancelled"):
            run_ids.append(detail)
        elif outcome == "failed":
            failures.append({"runId": run.id, "message": detail})
        deps.faults.point("bulk.after_run")
    processed = batch.processed + len(found.runs)
    done = not found.has_more or processed >= batch.limit
    page = BatchPage(batch.pages, tuple(run_ids), tuple(failures)) \
        if run_ids or failures else None
    advanced = batch.evolve(
        counts=counts, processed=processed, pages=batch.pages + (page is not None),
        cursor=found.runs[-1].sort_key if found.runs else batch.cursor, done=done,
        finished_at=deps.clock() if done else None)
    deps.faults.point("bulk.before_advance")
    try:
        deps.batches.advance(advanced, expected_version=batch.version, page=page)
    except StaleBatch:  # a duplicate delivery committed this page first; it goes on
        logger.info("batch page already committed", extra={"batch_id": batch.id})
        return
    logger.info("batch page done", extra={"batch_id": batch.id, "processed": processed,
                                          "done": done})
    if not done:
        _send(deps, batch.id, delay_seconds=PACE_S)


def _replay_one(deps, batch: Batch, run: Run) -> tuple[str, str]:
    """(outcome, new run id or reason) of replaying one matched run for the batch."""
    options = batch.options
    if not is_terminal(run.status):
        return "skipped", f"still {run.status.value}"
    if run.status == RunStatus.COMPLETED and not options.get("fromStep"):
        return "skipped", "completed: nothing to resume"
    mine = {"batchId": batch.id}
    claim = f"bulk-replay:{run.id}"
    if not options.get("again"):
        earlier = [e for e in run.events
                   if e.type == "replayed" and e.detail.get("batchId") != batch.id]
        if earlier:
            return "skipped", f"already replayed as {earlier[-1].detail.get('replayId')}"
        holder = deps.markers.put_once(claim, mine, _claim_ttl(deps))
        if holder is not None and holder != mine:
            return "skipped", f"being replayed by batch {holder.get('batchId')}"
        deps.faults.point("bulk.after_claim")
    fields = {"trigger_data": options["triggerData"]} if "triggerData" in options else {}
    try:
        new_run, _ = replay(deps, run.id, actor=batch.actor, is_admin=True,
                            from_step=options.get("fromStep"),
                            definition=options.get("definition", "latest"),
                            idempotency_key=f"batch:{batch.id}", batch_id=batch.id, **fields)
    except DomainError as exc:  # a conflict, a bad fromStep, an automation gone
        if not options.get("again"):
            deps.markers.delete(claim, only_if=mine)  # a later batch may try it again
        return "failed", exc.message
    return "replayed", new_run.id


def _claim_ttl(deps) -> int:
    return int(timedelta(days=deps.settings.retention_days).total_seconds())


def _cancel_one(deps, batch: Batch, run: Run) -> tuple[str, str]:
    """(outcome, run id or reason) of cancelling one matched run for the batch."""
    if is_terminal(run.status):
        return _cancelled_before(deps, batch, run)
    try:
        cancelled = cancel_run(deps.repo, run.id, actor=batch.actor, now=deps.clock(),
                               detail={"batchId": batch.id})
    except InvalidTransition:  # it ended since the page was read
        return _cancelled_before(deps, batch, deps.repo.get_run(run.id))
    lifecycle.cancelled(deps, cancelled)
    return "cancelled", run.id


def _cancelled_before(deps, batch: Batch, run: Run) -> tuple[str, str]:
    """A terminal run: cancelled by this batch before a crash (counted as such, its
    follow-ups finished), or skipped."""
    ours = run.status == RunStatus.CANCELLED and any(
        e.type == "cancel" and e.detail.get("batchId") == batch.id for e in run.events)
    if not ours:
        return "skipped", run.status.value
    if not lifecycle.followed_up(deps, run):
        lifecycle.cancelled(deps, run)
    return "cancelled", run.id


def give_up(deps, message: dict[str, Any], reason: str) -> None:
    """End a batch whose messages kept crashing the worker (from the step DLQ)."""
    try:
        batch = deps.batches.get(message["batchId"])
    except BatchNotFound:
        return
    if batch.done:
        return
    try:
        deps.batches.advance(batch.evolve(done=True, error=reason,
                                          finished_at=deps.clock()),
                             expected_version=batch.version)
    except StaleBatch:
        raise  # redelivered: the next attempt reads the newer version
