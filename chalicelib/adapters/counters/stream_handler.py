"""The Lambda entry of the runs table's stream: one checkpoint per batch, then the writer."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .deltas import Record
from .writer import CounterWriter, apply_records


def batch_checkpoint_id(records: Sequence[Record]) -> str:
    """Checkpoint id of a Lambda batch: its stream ARN and its first record's event id.

    Lambda's DynamoDB event carries no shard id. One checkpoint per stream ARN would be
    wrong when several shards are processed at once (sequence numbers are only ordered
    within a shard). A failed batch is retried from the same first record, so keying the
    checkpoint by that record makes every retry skip exactly what was already applied. This
    relies on BisectBatchOnFunctionError and ReportBatchItemFailures staying off
    (infra/resources.yaml), since both resume from a record in the middle of a batch.
    """
    first = records[0]
    return f"{first.get('eventSourceARN', '')}|{first['eventID']}"


def process_stream_event(event: dict[str, Any], writer: CounterWriter | None = None
                         ) -> dict[str, int]:
    """Lambda entry point for the runs table's stream."""
    records = event.get("Records") or []
    if not records:
        return {"applied": 0}
    return {"applied": apply_records(records, batch_checkpoint_id(records), writer)}


