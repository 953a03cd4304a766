"""The moto patch layer (chalicelib/local/atomic.py): a transaction's cost does not grow with
the table, its rollback restores exactly what it touched, and read stream records are trimmed."""
from __future__ import annotations

import copy

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item

from chalicelib.local.atomic import make_moto_dynamodb_atomic

TABLE = "patched"


@pytest.fixture
def dynamodb():
    make_moto_dynamodb_atomic()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        yield client


def _fill(client, count):
    for index in range(count):
        client.put_item(TableName=TABLE, Item={"pk": {"S": f"filler-{index}"},
                                               "sk": {"S": "RUN"}, "n": {"N": str(index)}})


def _transaction(client, run_id):
    """The shape of create_run with steps: a conditional put and two step puts."""
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": run_id}, "sk": {"S": "RUN"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "filler-0"}, "sk": {"S": "RUN"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": run_id}, "sk": {"S": "STEP#0001"}}}},
    ])


@pytest.fixture
def copied(monkeypatch):
    """Counts moto items deep-copied (whoever copies them: a snapshot, a table backup)."""
    counter = {"items": 0}

    def deepcopy(self, memo):
        counter["items"] += 1
        clone = Item.__new__(Item)
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone

    monkeypatch.setattr(Item, "__deepcopy__", deepcopy, raising=False)
    return counter


def _copies_per_transaction(client, copied, run_id):
    before = copied["items"]
    _transaction(client, run_id)
    return copied["items"] - before


def _table():
    return dynamodb_backends["123456789012"]["us-east-1"].tables[TABLE]


def test_a_transaction_copies_only_the_items_it_touches_whatever_the_table_size(
        dynamodb, copied):
    _fill(dynamodb, 10)
    small = _copies_per_transaction(dynamodb, copied, "run-a")
    _fill(dynamodb, 200)
    large = _copies_per_transaction(dynamodb, copied, "run-b")

    # The snapshot of the one existing item it updates and moto's own old image for the
    # stream: the same at 10 and at 210 items (unpatched: 31 and 607).
    assert small == large <= 3


def test_a_cancelled_transaction_restores_the_touched_items_and_writes_no_stream_record(dynamodb):
    _fill(dynamodb, 3)
    _transaction(dynamodb, "run-a")
    records_before = len(_table().stream_shard.items)

    with pytest.raises(ClientError) as caught:
        _transaction(dynamodb, "run-a")  # the run exists: the first condition fails

    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "filler-0"}, "sk": {"S": "RUN"}})
    assert item["Item"]["n"] == {"N": "1"}  # the update before the failure was undone
    assert len(_table().stream_shard.items) == records_before


def test_a_later_failure_undoes_a_new_item_written_earlier_in_the_transaction(dynamodb):
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}, "sk": {"S": "RUN"}}}},
            {"ConditionCheck": {"TableName": TABLE,
                                "Key": {"pk": {"S": "missing"}, "sk": {"S": "RUN"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])

    assert "Item" not in dynamodb.get_item(TableName=TABLE,
                                           Key={"pk": {"S": "new"}, "sk": {"S": "RUN"}})


def test_stream_records_already_read_are_trimmed_and_reading_continues(dynamodb):
    streams = boto3.client("dynamodbstreams", region_name="us-east-1",
                           endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    _fill(dynamodb, 5)

    first = streams.get_records(ShardIterator=iterator, Limit=3)
    assert len(first["Records"]) == 3 and len(_table().stream_shard.items) == 2
    _fill(dynamodb, 1)
    second = streams.get_records(ShardIterator=first["NextShardIterator"], Limit=100)

    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in first["Records"] + second["Records"]]
    assert len(numbers) == 6 and numbers == sorted(set(numbers))
    assert _table().stream_shard.items == []
