"""Exact list counters kept from the runs table's stream (SPEC 7).

Maintaining counters inside every status transaction would double each transition's write
units (transactions cost 2x) and add four counter items to it; bench/cost.py measures
the difference. Instead the stream (NEW_AND_OLD_IMAGES) feeds `apply_records`, which adds
the net change per counter in one transaction together with a checkpoint item conditioned on
the last applied sequence number, so a redelivered batch is applied exactly once.

Counter items: pk="COUNTER#<automation or *>#<triggerType or *>", sk="COUNTER", one number
per run status. Each run item change touches the four counters (auto, trigger), (auto, *),
(*, trigger) and (*, *).
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError
from pynamodb.transactions import TransactWrite

from ..settings import Settings, get_settings
from .dynamo_models import COUNTER_SK, RUN_SK, Tables, bind_tables, counter_pk, status_attribute

CHECKPOINT_SK = "CHECKPOINT"
MAX_TRANSACTION_ITEMS = 100
# Stream records live 24 h; a checkpoint only has to outlive every redelivery of them.
CHECKPOINT_TTL_S = 2 * 86400

Record = dict[str, Any]


def _sequence(record: Record) -> str:
    # Sequence numbers are decimal strings of up to 40 digits: padded, text order is number order.
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


def _chunks(records: Sequence[Record]) -> Iterable[list[Record]]:
    """Consecutive groups whose counters, plus the checkpoint, fit in one transaction."""
    chunk: list[Record] = []
    keys: set[str] = set()
    for record in records:
        touched = set(deltas([record]))
        if chunk and len(keys | touched) > MAX_TRANSACTION_ITEMS - 1:
            yield chunk
            chunk, keys = [], set()
        chunk.append(record)
        keys |= touched
    if chunk:
        yield chunk


class CounterWriter:
    """Applies stream records to the counters, exactly once per checkpoint id."""

    def __init__(self, settings: Settings, clock=time.time) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)
        self._clock = clock

    def applied_sequence(self, checkpoint_id: str) -> str | None:
        """The last sequence number applied under `checkpoint_id` (padded), or None."""
        model = self.tables.checkpoint
        try:
            return model.get(f"CHECKPOINT#{checkpoint_id}", CHECKPOINT_SK,
                             consistent_read=True).seq
        except model.DoesNotExist:
            return None

    def apply(self, records: Sequence[Record], checkpoint_id: str) -> int:
        """Apply the records not applied yet; returns how many were new."""
        last = self.applied_sequence(checkpoint_id)
        fresh = sorted((r for r in records if last is None or _sequence(r) > last),
                       key=_sequence)
        for chunk in _chunks(fresh):
            changes = deltas(chunk)
            if not changes:
                continue  # nothing to count: re-reading these later is harmless
            self._commit(checkpoint_id, last, _sequence(chunk[-1]), changes)
            last = _sequence(chunk[-1])
        return len(fresh)

    def _commit(self, checkpoint_id: str, previous: str | None, sequence: str,
                changes: dict[str, dict[str, int]]) -> None:
        # A concurrent writer moving the checkpoint fails this transaction; the error
        # propagates so the batch is retried, and the retry skips what is now applied.
        checkpoint, counter = self.tables.checkpoint, self.tables.counter
        guard = (checkpoint.seq.does_not_exist() if previous is None
                 else checkpoint.seq == previous)
        with TransactWrite(connection=self.tables.connection.connection) as transaction:
            transaction.update(
                checkpoint(f"CHECKPOINT#{checkpoint_id}", CHECKPOINT_SK),
                actions=[checkpoint.seq.set(sequence),
                         checkpoint.expires_at.set(int(self._clock()) + CHECKPOINT_TTL_S)],
                condition=guard)
            for key, by_status in sorted(changes.items()):
                actions = [getattr(counter, status_attribute(status)).add(delta)
                           for status, delta in sorted(by_status.items())]
                transaction.update(counter(key, COUNTER_SK), actions=actions)


@lru_cache(maxsize=1)
def _writer() -> CounterWriter:
    return CounterWriter(get_settings())


def apply_records(records: Sequence[Record], shard_id: str,
                  writer: CounterWriter | None = None) -> int:
    """Apply stream records of one shard exactly once (checkpoint per `shard_id`)."""
    return (writer or _writer()).apply(records, shard_id)


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


def to_lambda_record(record: Record, stream_arn: str) -> Record:
    """A record from the dynamodbstreams API in the shape Lambda delivers it."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


class StreamPoller:
    """Reads the runs table's stream directly and applies it (the local stack and tests).

    The same `apply_records` as the Lambda, with a checkpoint per real shard id. Iterators
    are kept across `drain()` calls, so each call reads only what is new.
    """

    def __init__(self, settings: Settings, writer: CounterWriter | None = None) -> None:
        self._settings = settings
        self.writer = writer or CounterWriter(settings)
        self._client = None
        self._stream_arn: str | None = None
        self._iterators: dict[str, str | None] = {}  # shard id → next iterator (None: closed)
        self._lock = threading.Lock()

    @property
    def client(self):
        """The dynamodbstreams client: AWS_ENDPOINT_URL* when set (moto server), else AWS's."""
        if self._client is None:
            client = boto3.client("dynamodbstreams", region_name=self._settings.region)
            if client.meta.endpoint_url.endswith(".amazonaws.com"):
                # moto's in-process mock only answers streams on their own host name.
                client = boto3.client(
                    "dynamodbstreams", region_name=self._settings.region,
                    endpoint_url=f"https://streams.dynamodb.{self._settings.region}.amazonaws.com")
            self._client = client
        return self._client

    def _arn(self) -> str:
        if self._stream_arn is None:
            table = self.writer.tables.client.describe_table(
                TableName=self._settings.runs_table)["Table"]
            self._stream_arn = table["LatestStreamArn"]
        return self._stream_arn

    def _shards(self) -> list[str]:
        shards, start = [], None
        while True:
            kwargs = {"StreamArn": self._arn(), **({"ExclusiveStartShardId": start} if start else {})}
            description = self.client.describe_stream(**kwargs)["StreamDescription"]
            shards += [shard["ShardId"] for shard in description.get("Shards", [])]
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    def _iterator(self, shard_id: str) -> str | None:
        if shard_id not in self._iterators:
            # From the start of the shard: the checkpoint skips what was applied before.
            self._iterators[shard_id] = self.client.get_shard_iterator(
                StreamArn=self._arn(), ShardId=shard_id, ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
        return self._iterators[shard_id]

    def _read_shard(self, shard_id: str) -> list[Record]:
        iterator = self._iterator(shard_id)
        if iterator is None:
            return []
        try:
            page = self.client.get_records(ShardIterator=iterator, Limit=1000)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            del self._iterators[shard_id]  # re-read from the start; the checkpoint dedupes
            return []
        self._iterators[shard_id] = page.get("NextShardIterator")
        return [to_lambda_record(record, self._arn()) for record in page.get("Records", [])]

    def fetch(self) -> dict[str, list[Record]]:
        """Records written since the last read, per shard, in Lambda's shape (not applied)."""
        with self._lock:
            return {shard_id: self._read_shard(shard_id) for shard_id in self._shards()}

    def drain(self) -> int:
        """Apply every record written so far; returns how many records were read."""
        with self._lock:
            total = 0
            while True:
                read = 0
                for shard_id in self._shards():
                    records = self._read_shard(shard_id)
                    if records:
                        apply_records(records, shard_id, self.writer)
                    read += len(records)
                total += read
                if not read:
                    return total

    def run_forever(self, stop_event: threading.Event, interval: float = 1.0) -> None:
        """Drain every `interval` seconds until `stop_event` is set (a thread's target)."""
        while not stop_event.is_set():
            self.drain()
            stop_event.wait(interval)
