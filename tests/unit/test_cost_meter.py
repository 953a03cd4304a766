"""The cost bench's meter: DynamoDB sizing and capacity rules, and counting on moto."""
from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from bench.meter import AwsMeter, IndexShape, index_write_units, item_size, value_size

KEYS = ("pk", "sk")
BY_STATUS = IndexShape("byStatus", ("statusPk", "listSk"), ("triggerType",))


def image(status: str | None, trigger: str = "manual", extra: str = "") -> dict:
    item = {"pk": {"S": "run-1"}, "sk": {"S": "RUN"}, "listSk": {"S": "2030-01-01#run-1"},
            "triggerType": {"S": trigger}, "note": {"S": extra}}
    if status:
        item["statusPk"] = {"S": status}
    return item


class TestSizes:
    def test_values_are_sized_as_dynamodb_sizes_them(self):
        assert value_size({"S": "héllo"}) == 6  # UTF-8 bytes
        assert value_size({"N": "12345"}) == 4  # ceil(5 digits / 2) + 1
        assert value_size({"BOOL": True}) == 1
        assert value_size({"L": [{"S": "ab"}]}) == 3 + 1 + 2
        assert value_size({"M": {"k": {"S": "ab"}}}) == 3 + 1 + 1 + 2
        assert item_size({"pk": {"S": "abc"}}) == 2 + 3


class TestIndexUnits:
    def test_a_new_entry_is_one_put(self):
        assert index_write_units([BY_STATUS], KEYS, None, image("pending")) == 1

    def test_a_moved_key_is_a_delete_and_a_put(self):
        assert index_write_units([BY_STATUS], KEYS, image("pending"), image("running")) == 2

    def test_a_changed_projected_attribute_is_one_write(self):
        assert index_write_units([BY_STATUS], KEYS, image("done"),
                                 image("done", trigger="cron")) == 1

    def test_an_attribute_outside_the_index_costs_nothing(self):
        assert index_write_units([BY_STATUS], KEYS, image("done"),
                                 image("done", extra="x" * 5000)) == 0

    def test_an_item_without_the_key_is_not_in_the_index(self):
        assert index_write_units([BY_STATUS], KEYS, image(None), image(None, extra="y")) == 0
        assert index_write_units([BY_STATUS], KEYS, image("done"), image(None)) == 1


@pytest.fixture(scope="module")
def metered():
    meter = AwsMeter().install()
    with mock_aws():
        client = boto3.Session(region_name="us-east-1").client("dynamodb")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("pk", "sk", "g")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "byG", "Projection": {"ProjectionType": "KEYS_ONLY"},
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}]}])
        yield meter, client
    meter.uninstall()


class TestMeterOnMoto:
    def test_writes_are_priced_from_the_item_before_and_after(self, metered):
        meter, client = metered
        key = {"pk": {"S": "a"}, "sk": {"S": "b"}}
        before = meter.snapshot()
        client.put_item(TableName="t", Item={**key, "g": {"S": "x"}, "v": {"S": "z" * 1500}})
        client.update_item(TableName="t", Key=key, UpdateExpression="SET g = :g",
                           ExpressionAttributeValues={":g": {"S": "y"}})
        with pytest.raises(client.exceptions.ConditionalCheckFailedException):
            client.put_item(TableName="t", Item=key, ConditionExpression="attribute_not_exists(pk)")
        client.get_item(TableName="t", Key=key, ConsistentRead=True)
        used = meter.snapshot().minus(before)
        assert used.by_operation("dynamodb") == {"GetItem": 1, "PutItem": 2, "UpdateItem": 1}
        # put: 2 KB item + index put; update: 2 KB + index move; failed put: the stored 2 KB.
        assert used.write_units == (2 + 1) + (2 + 2) + 2
        assert used.index_write_units == 3
        assert used.read_units == 1

    def test_paused_requests_are_not_counted(self, metered):
        meter, client = metered
        before = meter.snapshot()
        with meter.paused():
            client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
        assert meter.snapshot().minus(before).requests == {}
