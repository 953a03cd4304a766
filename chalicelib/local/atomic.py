"""The project's moto patch layer: DynamoDB as atomic, and as cheap, as the real service.

- Atomic: moto checks a ConditionExpression and then applies the write without a lock, so
  two threads can both pass the same condition; real DynamoDB never lets that happen. Each
  DynamoDB request (and each stream read) is serialised here so races behave as on AWS.
- Cheap transactions: moto 5.2.5's TransactWriteItems deep-copies every table a transaction
  touches (every item, and every stream record since the start) to be able to roll back, so
  each transaction costs O(table) time and memory. Here a transaction saves only the items
  it touches and the stream's length, and restores exactly those on rollback.
- Trimmed streams: moto keeps every stream record forever. Records a reader has read are
  dropped here (DynamoDB drops them after 24 h); a reader positioned before the trim point
  resumes at the oldest record kept, as an expired position does on DynamoDB. This assumes
  one consumer per stream, as the project has (the counter writer, resuming from its
  checkpoint); moto's list of shard iterators, one per read, is bounded too.
"""
from __future__ import annotations

import copy
import threading
from typing import Any

_lock = threading.RLock()
_patched = False
MAX_ITERATORS = 1000  # shard iterators kept by moto's streams backend


def make_moto_dynamodb_atomic() -> None:
    """Apply every patch of this module to moto (idempotent)."""
    global _patched
    with _lock:
        if _patched:
            return
        _serialise_requests()
        _cheap_transactions()
        _trimmed_streams()
        _patched = True


def _serialise_requests() -> None:
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415 - moto is dev-only

    original = DynamoHandler.call_action

    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action


def _cheap_transactions() -> None:
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415

    DynamoDBBackend.transact_write_items = transact_write_items


def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems (moto/dynamodb/models/__init__.py, 5.2.5) with a rollback
    that restores only the touched items: same checks, same errors, same results."""
    from moto.dynamodb.comparisons import get_filter_expression  # noqa: PLC0415
    from moto.dynamodb.exceptions import (  # noqa: PLC0415
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    saved = _Snapshot(self)
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            saved.keep(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                              expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition_expression,
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition_expression,
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            saved.restore()
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original_item))
        except Exception as exc:  # noqa: BLE001 - reported per item, as moto does
            errors.append((type(exc).__name__, str(exc), original_item))
    if any(code is not None for code, _, _ in errors):
        saved.restore()
        raise TransactionCanceledException(errors)


class _Snapshot:
    """The items a transaction touches, as they were before it, and each stream's length."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._items: dict[tuple[str, Any, Any], Any] = {}
        self._streams: dict[str, tuple[Any, int]] = {}

    def keep(self, table_name: str, key: dict[str, Any]) -> None:
        if table_name not in self._backend.tables:
            return  # moto answers ResourceNotFound for the item; nothing to restore
        table = self._backend.tables[table_name]
        hash_key, range_key = self._backend.get_keys_value(table, key)
        slot = (table_name, hash_key, range_key)
        if slot not in self._items:
            current = table.get_item(hash_key, range_key)
            self._items[slot] = copy.deepcopy(current)  # updates change items in place
        shard = table.stream_shard
        if shard is not None and table_name not in self._streams:
            self._streams[table_name] = (shard, len(shard.items))

    def restore(self) -> None:
        for (table_name, hash_key, range_key), item in self._items.items():
            table = self._backend.tables[table_name]
            if range_key is not None:
                bucket = table.items[hash_key]
                if item is None:
                    bucket.pop(range_key, None)
                    if not bucket:
                        table.items.pop(hash_key, None)
                else:
                    bucket[range_key] = item
            elif item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        for shard, length in self._streams.values():
            del shard.items[length:]  # the rolled-back writes never reach the stream


def _trimmed_streams() -> None:
    from moto.dynamodb.models.table import StreamShard  # noqa: PLC0415
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend  # noqa: PLC0415

    def get(self, start: int, quantity: int) -> list[dict[str, Any]]:
        offset = max(start - self.starting_sequence_number, 0)  # trimmed: from the oldest kept
        return [record.to_json() for record in self.items[offset:offset + quantity]]

    original_get_records = DynamoDBStreamsBackend.get_records

    def get_records(self, iterator_arn: str, limit: int) -> dict[str, Any]:
        with _lock:
            shard = self.shard_iterators[iterator_arn].stream_shard
            page = original_get_records(self, iterator_arn, limit)
            # moto keeps every iterator it hands out (one per read); keep the newest only.
            while len(self.shard_iterators) > MAX_ITERATORS:
                self.shard_iterators.pop(next(iter(self.shard_iterators)))
            if page["Records"]:
                read_up_to = int(page["Records"][-1]["dynamodb"]["SequenceNumber"]) + 1
                drop = read_up_to - shard.starting_sequence_number
                if drop > 0:
                    del shard.items[:drop]
                    shard.starting_sequence_number += drop
            return page

    StreamShard.get = get
    DynamoDBStreamsBackend.get_records = get_records
