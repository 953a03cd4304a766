"""Net counter changes of runs-table stream records: which counters a run's change moves.

Pure functions over the records (no client): INSERT adds the run's status, REMOVE takes the
old one away, MODIFY moves the run from its old status to the new one when it changed.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..dynamo_models import RUN_SK, counter_pk

Record = dict[str, Any]


def sequence(record: Record) -> str:
    """The record's sequence number, padded so that text order is number order."""
    # Sequence numbers are decimal strings of up to 40 digits.
    return record["dynamodb"]["SequenceNumber"].zfill(40)


def _view(image: dict[str, Any] | None) -> tuple[str, str, str] | None:
    if not image:
        return None
    return image["automationName"]["S"], image["triggerType"]["S"], image["status"]["S"]


def counter_keys(automation: str, trigger_type: str) -> list[str]:
    """The four counters a run of `automation` fired by `trigger_type` is counted in."""
    return [counter_pk(automation, trigger_type), counter_pk(automation, None),
            counter_pk(None, trigger_type), counter_pk(None, None)]


def deltas(records: Iterable[Record]) -> dict[str, dict[str, int]]:
    """Net counter changes of stream records: {counter key: {status: delta}}, zeros left out.

    Only run items count. INSERT adds its status, REMOVE (a delete or a TTL expiry) takes the
    old one away, MODIFY moves one run from the old status to the new when it changed.
    """
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        change = record["dynamodb"]
        if change.get("Keys", {}).get("sk", {}).get("S") != RUN_SK:
            continue
        old, new = _view(change.get("OldImage")), _view(change.get("NewImage"))
        if old == new:
            continue
        if old is not None and record["eventName"] != "INSERT":
            for key in counter_keys(old[0], old[1]):
                totals[key][old[2]] -= 1
        if new is not None and record["eventName"] != "REMOVE":
            for key in counter_keys(new[0], new[1]):
                totals[key][new[2]] += 1
    return {key: {status: delta for status, delta in by_status.items() if delta}
            for key, by_status in totals.items() if any(by_status.values())}
