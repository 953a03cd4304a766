"""List, count and status queries over the runs table's sparse list indexes.

Every list index is keyed `<hash> / listSk` with `listSk = "<createdAt>#<id>"`, so reading
an index backwards gives `createdAt desc, id desc`; `since`, `until` and a cursor become a
key condition, and the trigger type and expiry (projected) a filter expression. Only the
page's run items are then fetched, with one BatchGetItem.

Pending and running runs are listed in byStatus under "active" (dynamo_models.status_keys),
told apart by their projected status and automation: an ended run's entry moves once, and a
filter on "active" reads only the runs in flight, however many runs the table holds.

There is no index of every run nor of every run of an automation (each would cost every run
a write unit): a list without a status filter merges the status partitions, "active" and
each end status, one Query each limited to the page, so its cost does not grow with the table.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..domain.clock import iso
from ..domain.model import Run, RunFilter, RunSlice
from ..domain.search import search_key
from ..domain.statuses import RunStatus
from .dynamo_definitions import DefinitionStore
from .dynamo_models import (
    ACTIVE,
    ACTIVE_STATUSES,
    COUNTER_SK,
    RUN_SK,
    SEARCH_INDEXES,
    Tables,
    counter_pk,
    item_to_run,
    status_attribute,
)

MAX_STATUSES = len(RunStatus)  # one query per status at most (8)
BATCH_GET_LIMIT = 100


@dataclass(frozen=True)
class Stream:
    """One index partition to read; on "active" entries, the statuses and automation wanted
    (projected attributes, checked by the query's filter)."""

    index: str
    hash_value: str
    statuses: tuple[str, ...] = ()
    automation: str | None = None


@dataclass(frozen=True)
class Plan:
    """Which index partitions answer a filter, and what is left to check in code."""

    streams: tuple[Stream, ...]
    # True when a filter is not in the index (automation or status next to replay_of):
    # candidates must then be fetched whole before they can be counted as matches.
    needs_items: bool = False


def choose_plan(filt: RunFilter) -> Plan:
    """The most selective index for `filt` (SPEC 7: by replay, automation+status, ...)."""
    statuses = tuple(dict.fromkeys(RunStatus(status).value for status in filt.statuses))
    if len(statuses) > MAX_STATUSES:
        raise ValueError(f"at most {MAX_STATUSES} statuses")
    automation = filt.automation_name
    if filt.replay_of is not None:
        return Plan((Stream("byReplayOf", filt.replay_of),),
                    needs_items=bool(automation or statuses or filt.waiting or filt.data))
    if filt.data is not None or filt.waiting is not None:
        # A search key sits in one of three indexes (its declared position), waiting runs in
        # byWaiting; status and automation are projected there and filtered on. Waiting next
        # to a search is checked on the fetched runs (both sets are small).
        if filt.data is not None:
            key = search_key(*filt.data)
            streams = tuple(Stream(index, key, statuses, automation)
                            for index, _ in SEARCH_INDEXES)
        else:
            streams = (Stream("byWaiting", filt.waiting, statuses, automation),)
        return Plan(streams, needs_items=filt.data is not None and filt.waiting is not None)
    # No status asked: every status partition (a run is in exactly one), merged.
    statuses = statuses or tuple(status.value for status in RunStatus)
    active = tuple(s for s in statuses if RunStatus(s) in ACTIVE_STATUSES)
    streams = [Stream("byAutomationStatus", f"{automation}#{status}") if automation
               else Stream("byStatus", status)
               for status in statuses if status not in active]
    if active:
        every = len(active) == len(ACTIVE_STATUSES)
        streams.append(Stream("byStatus", ACTIVE, () if every else active, automation))
    return Plan(tuple(streams))


def _first_page(stream: Stream, page_size: int) -> int | None:
    """The Limit of a stream's first Query: the page, or none for "active" entries filtered
    by status or automation. `Limit` counts entries read, not matches, and the runs in flight
    are few (thousands per 1 MB request): one unlimited read is always enough for them."""
    return None if stream.statuses or stream.automation else page_size


def _sort_key(raw: dict[str, Any]) -> str:
    return raw["listSk"]["S"]


def _once_each(entries: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Entries with a run seen just before left out: an index lags its table, so a run whose
    entry is moving (active → its end status) may briefly sit in two merged partitions; its
    two entries share a listSk, so they arrive one after the other."""
    last = None
    for raw in entries:
        run_id = raw["pk"]["S"]
        if run_id != last:
            yield raw
        last = run_id


def _bounds(filt: RunFilter, after: str | None) -> tuple[str | None, str | None]:
    """(inclusive lower, exclusive upper) bound on listSk, None where unbounded."""
    uppers = [bound for bound in (after, filt.until and iso(filt.until) + "$") if bound]
    return (iso(filt.since) if filt.since is not None else None,
            min(uppers) if uppers else None)


def _empty_range(filt: RunFilter, after: str | None) -> bool:
    """True when no listSk fits, e.g. a cursor older than `since`."""
    # Asking anyway would send a `between` with lower > upper, which DynamoDB rejects.
    lower, upper = _bounds(filt, after)
    return lower is not None and upper is not None and upper <= lower


class RunQueries:
    """The read side of DynamoRunRepository: list_runs, count_runs, runs_in_status."""

    def __init__(self, tables: Tables, clock, definitions: DefinitionStore) -> None:
        self.tables = tables
        self._clock = clock
        self._definitions = definitions

    def _conditions(self, filt: RunFilter, after: str | None):
        """(key condition on listSk, filter expression, exclusive upper bound or None)."""
        model = self.tables.run
        lower, upper = _bounds(filt, after)
        key = None
        if lower and upper:
            key = model.list_sk.between(lower, upper)  # inclusive: `after` itself dropped later
        elif upper:
            key = model.list_sk < upper
        elif lower:
            key = model.list_sk >= lower
        # Expired runs stay in the indexes until the sweeper or DynamoDB's TTL deletes them.
        where = model.expires_at.does_not_exist() | (model.expires_at > self._clock())
        if filt.trigger_type is not None:
            where = where & (model.trigger_type == filt.trigger_type)
        return key, where, upper

    def _where(self, stream: Stream, where):
        """The list's filter plus the stream's own (status, automation of active entries)."""
        model = self.tables.run
        if stream.statuses:
            where = where & model.status.is_in(*stream.statuses)
        if stream.automation:
            where = where & (model.auto_pk == stream.automation)
        return where

    def _entries(self, index: str, hash_value: str, key, where, page_size: int | None,
                 forward: bool = False) -> Iterator[dict[str, Any]]:
        """Index entries of one hash value in listSk order; only the first request is limited."""
        # `Limit` counts entries read, not entries matching the filter: a sparse filter
        # (triggerType) with Limit=page_size would take one request per page_size entries.
        # Only the first request is limited, which is all a dense match needs; the rest are
        # read 1 MB (thousands of entries) at a time, and reading stops once enough matched.
        start, limit = None, page_size
        while True:
            page = self.tables.connection.query(
                hash_value, range_key_condition=key, filter_condition=where,
                index_name=index, limit=limit, scan_index_forward=forward,
                exclusive_start_key=start)
            yield from page.get("Items", [])
            start, limit = page.get("LastEvaluatedKey"), None
            if not start:
                return

    def _merged(self, plan: Plan, filt: RunFilter, after: str | None,
                page_size: int) -> Iterator[dict[str, Any]]:
        """Entries of every hash value of `plan`, merged newest first."""
        if _empty_range(filt, after):
            return iter(())
        key, where, upper = self._conditions(filt, after)
        streams = [self._entries(stream.index, stream.hash_value, key,
                                 self._where(stream, where), _first_page(stream, page_size))
                   for stream in plan.streams]
        merged = heapq.merge(*streams, key=_sort_key, reverse=True)
        return _once_each(raw for raw in merged if upper is None or _sort_key(raw) < upper)

    def fetch_runs(self, run_ids: list[str]) -> list[Run]:
        """Run items by id, in the given order (one BatchGetItem per 100), expired ones left out."""
        items = {}
        for start in range(0, len(run_ids), BATCH_GET_LIMIT):
            chunk = [(run_id, RUN_SK) for run_id in run_ids[start:start + BATCH_GET_LIMIT]]
            for item in self.tables.run.batch_get(chunk, consistent_read=True):
                items[item.pk] = item
        definitions = self._definitions.resolve(item.definition_ref for item in items.values())
        found = {run_id: item_to_run(item, definitions) for run_id, item in items.items()}
        now = self._clock()
        return [found[run_id] for run_id in run_ids if run_id in found
                and (found[run_id].expires_at is None or found[run_id].expires_at > now)]

    def list_runs(self, filt: RunFilter, *, limit: int, after: str | None = None,
                  offset: int = 0) -> RunSlice:
        """Page of runs: index entries until offset+limit+1 matches, then one BatchGetItem."""
        plan = choose_plan(filt)
        wanted = offset + limit + 1
        entries = self._merged(plan, filt, after, page_size=wanted)
        if plan.needs_items:
            runs = list(itertools.islice(self._whole_matches(entries, filt), wanted))
            return RunSlice(runs=runs[offset:offset + limit], has_more=len(runs) > offset + limit)
        taken = list(itertools.islice(entries, wanted))
        page_ids = [raw["pk"]["S"] for raw in taken[offset:offset + limit]]
        # A global index lags its table slightly: recheck the fetched items themselves.
        runs = [run for run in self.fetch_runs(page_ids) if filt.matches(run)]
        return RunSlice(runs=runs, has_more=len(taken) > offset + limit)

    def _whole_matches(self, entries: Iterator[dict[str, Any]],
                       filt: RunFilter) -> Iterator[Run]:
        """Fetch candidates whole, a batch at a time, and keep those matching every filter."""
        while True:
            batch = [raw["pk"]["S"] for raw in itertools.islice(entries, BATCH_GET_LIMIT)]
            if not batch:
                return
            yield from (run for run in self.fetch_runs(batch) if filt.matches(run))

    def count_runs(self, filt: RunFilter) -> int:
        """Exact count of the runs matching `filt`.

        Without since/until/replay_of: ONE GetItem of the (automation, trigger type) counter
        kept from the stream (adapters/counters.py), summed over the statuses asked for; its
        cost does not grow with the number of runs. Runs past their expiry still count there
        until the sweeper (services/sweeper.py, each minute) or DynamoDB's TTL deletes them
        (the stream then decrements).
        With since/until/replay_of: a Select=COUNT query per status on the chosen index with
        the list's key condition and filter; it reads every matching index entry (about 1 RCU
        per 4 KB of ~150-byte entries, i.e. ~25 runs, plus one request per 1 MB).
        Replay filters with automation/status fetch the few replays of one run whole.
        """
        if not (filt.since or filt.until or filt.replay_of or filt.waiting or filt.data):
            return self._counted(filt)
        if _empty_range(filt, None):
            return 0
        plan = choose_plan(filt)
        if plan.needs_items:
            return sum(1 for _ in self._whole_matches(self._merged(plan, filt, None, 1000), filt))
        key, where, _ = self._conditions(filt, None)
        return sum(self._count_one(stream.index, stream.hash_value, key,
                                   self._where(stream, where)) for stream in plan.streams)

    def _counted(self, filt: RunFilter) -> int:
        model = self.tables.counter
        try:
            item = model.get(counter_pk(filt.automation_name, filt.trigger_type), COUNTER_SK,
                             consistent_read=True)
        except model.DoesNotExist:
            return 0
        statuses = set(filt.statuses) or set(RunStatus)
        return sum(int(getattr(item, status_attribute(status)) or 0) for status in statuses)

    def _count_one(self, index: str, hash_value: str, key, where) -> int:
        total, start = 0, None
        while True:
            page = self.tables.connection.query(
                hash_value, range_key_condition=key, filter_condition=where,
                index_name=index, select="COUNT", exclusive_start_key=start)
            total += page.get("Count", 0)
            start = page.get("LastEvaluatedKey")
            if not start:
                return total

    def runs_in_status(self, status: RunStatus, *, automation_name: str | None = None,
                       limit: int = 100, oldest_first: bool = True) -> list[Run]:
        """Runs in one status via byStatus / byAutomationStatus, oldest first by default."""
        filt = RunFilter(automation_name=automation_name, statuses=(status,))
        (stream,) = choose_plan(filt).streams
        key, where, _ = self._conditions(filt, None)
        entries = self._entries(stream.index, stream.hash_value, key,
                                self._where(stream, where),
                                page_size=_first_page(stream, limit), forward=oldest_first)
        ids = [raw["pk"]["S"] for raw in itertools.islice(entries, limit)]
        return [run for run in self.fetch_runs(ids) if run.status == status]

