"""Runs past their retention, found and deleted by the sweeper (SPEC 7).

DynamoDB's TTL deletes expired items only within a day or two; until then their run items
are still counted by the stream-fed counters. The sweeper deletes them itself, a bounded
batch per tick, and the stream's REMOVE of each run item decrements the counters.
"""
from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

from .dynamo_models import RUN_SK, STATUS_PARTITIONS, Tables


def expired_run_ids(tables: Tables, now: datetime, limit: int) -> list[str]:
    """Ids of expired runs among the `limit` oldest entries of each byStatus partition: one
    Query per partition (7, whatever the table holds), merged oldest first.

    Runs expire in creation order while the retention is unchanged, so the expired ones are
    the oldest entries. After the retention is shortened, newer runs that expire first may
    wait for older ones to be purged (or for DynamoDB's TTL).
    """
    model = tables.run
    pages = [tables.connection.query(
        partition, index_name="byStatus", scan_index_forward=True, limit=limit,
        filter_condition=model.expires_at <= int(now.timestamp())).get("Items", [])
        for partition in STATUS_PARTITIONS]
    merged = heapq.merge(*pages, key=lambda raw: raw["listSk"]["S"])
    return list(dict.fromkeys(raw["pk"]["S"] for raw in merged))[:limit]


def delete_partition(tables: Tables, run_id: str) -> int:
    """Delete every item of the run's partition (steps first, the run item last); returns
    how many were deleted. One Query plus one BatchWriteItem per 25 items."""
    keys: list[dict[str, Any]] = []
    start = None
    while True:
        page = tables.connection.query(run_id, consistent_read=True,
                                       attributes_to_get=["pk", "sk"], exclusive_start_key=start)
        keys += page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    # The run item last: if a batch fails, the run stays listed as expired and the next
    # tick retries, instead of leaving steps behind that no index leads to.
    keys.sort(key=lambda raw: raw["sk"]["S"] == RUN_SK)
    with tables.step.batch_write() as batch:
        for raw in keys:
            batch.delete(tables.step(raw["pk"]["S"], raw["sk"]["S"]))
    return len(keys)
