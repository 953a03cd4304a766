"""Bulk replay/cancel batches as items of the runs table: pk="BATCH#<id>", sk="BATCH" for the
batch (its fields as JSON in `body`, a `version` to condition on) and sk="PAGE#<n>" per page
of results, so a batch with all its pages is one Query. Both expire with the runs (TTL)."""
from __future__ import annotations

import json
from datetime import timedelta

from botocore.exceptions import ClientError

from ..domain.batches import (
    Batch, BatchNotFound, BatchPage, StaleBatch, batch_from_record, batch_to_record,
    page_from_record, page_to_record, with_page,
)
from ..domain.errors import AlreadyExists
from ..settings import Settings
from .dynamo_models import Tables, bind_tables
from .dynamo_repository import ConditionFailed, conditional

BATCH_SK = "BATCH"


def _pk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


class DynamoBatchStore:
    """BatchStore on the runs table; an advance with a page is one transaction."""

    def __init__(self, settings: Settings) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)
        self._table = settings.runs_table
        self._retention = timedelta(days=settings.retention_days)

    @property
    def client(self):
        """The botocore client every request goes through (to count requests)."""
        return self.tables.client

    def _expires(self, batch: Batch) -> str:
        return str(int((batch.created_at + self._retention).timestamp()))

    def _batch_item(self, batch: Batch) -> dict:
        return {"pk": {"S": _pk(batch.id)}, "sk": {"S": BATCH_SK},
                "body": {"S": json.dumps(batch_to_record(batch))},
                "version": {"N": str(batch.version)}, "expiresAt": {"N": self._expires(batch)}}

    def create(self, batch: Batch) -> None:
        try:
            conditional(self.client.put_item, {
                "TableName": self._table, "Item": self._batch_item(batch),
                "ConditionExpression": "attribute_not_exists(pk)"})
        except ConditionFailed as exc:
            raise AlreadyExists(f"batch {batch.id} exists", batch_id=batch.id) from exc

    def get(self, batch_id: str) -> Batch:
        items, start = [], None
        while True:  # one request unless the pages pass 1 MB (about 25,000 run ids)
            kwargs = {"TableName": self._table, "ConsistentRead": True,
                      "KeyConditionExpression": "#pk = :pk",
                      "ExpressionAttributeNames": {"#pk": "pk"},
                      "ExpressionAttributeValues": {":pk": {"S": _pk(batch_id)}}}
            if start:
                kwargs["ExclusiveStartKey"] = start
            answer = self.client.query(**kwargs)
            items += answer["Items"]
            start = answer.get("LastEvaluatedKey")
            if not start:
                break
        record = next((item for item in items if item["sk"]["S"] == BATCH_SK), None)
        if record is None:
            raise BatchNotFound(batch_id)
        pages = [page_from_record(json.loads(item["body"]["S"])) for item in items
                 if item["sk"]["S"].startswith("PAGE#")]
        return batch_from_record(json.loads(record["body"]["S"]), pages)

    def advance(self, batch: Batch, *, expected_version: int,
                page: BatchPage | None = None) -> Batch:
        stored = batch.evolve(version=expected_version + 1)
        put = {"TableName": self._table, "Item": self._batch_item(stored),
               "ConditionExpression": "#version = :expected",
               "ExpressionAttributeNames": {"#version": "version"},
               "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}}}
        try:
            if page is None:
                self.client.put_item(**put)
            else:
                page_item = {"pk": {"S": _pk(batch.id)}, "sk": {"S": f"PAGE#{page.index:08d}"},
                             "body": {"S": json.dumps(page_to_record(page))},
                             "expiresAt": {"N": self._expires(batch)}}
                self.client.transact_write_items(TransactItems=[
                    {"Put": put}, {"Put": {"TableName": self._table, "Item": page_item}}])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise
            reasons = exc.response.get("CancellationReasons") or [{"Code": "ConditionalCheckFailed"}]
            if code == "TransactionCanceledException" and \
                    reasons[0].get("Code") != "ConditionalCheckFailed":
                raise
            raise StaleBatch(batch.id, expected_version) from exc
        return with_page(stored, page)
