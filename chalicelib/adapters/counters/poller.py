"""The stream poller of the local stack and the tests: reads the runs table's stream through
the dynamodbstreams API and applies it with the same writer as the Lambda."""
from __future__ import annotations

import threading
from datetime import datetime

import boto3
from botocore.exceptions import ClientError

from ...settings import Settings
from .deltas import Record
from .writer import CounterWriter, apply_records


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
