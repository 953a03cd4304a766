"""Concurrency slots in the runs table: one item per automation holding a set of run ids.

Acquire is one conditional UpdateItem (`size(holders) < limit`, or already a holder), so it
is exact across concurrent Lambdas and idempotent per run; release removes the id.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from ..settings import Settings
from .aws_client import LazyClient


class DynamoSlots:
    """Slots port on DynamoDB."""

    def __init__(self, settings: Settings, client=None) -> None:
        self._table = settings.runs_table
        self._lazy = LazyClient("dynamodb", settings, client)

    @property
    def _client(self):
        return self._lazy.get()

    @staticmethod
    def _key(automation: str) -> dict:
        return {"pk": {"S": f"SLOTS#{automation}"}, "sk": {"S": "SLOTS"}}

    def acquire(self, automation: str, run_id: str, limit: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(automation),
                UpdateExpression="ADD holders :run",
                ConditionExpression=(
                    "attribute_not_exists(holders) OR size(holders) < :limit"
                    " OR contains(holders, :id)"
                ),
                ExpressionAttributeValues={
                    ":run": {"SS": [run_id]}, ":id": {"S": run_id}, ":limit": {"N": str(limit)},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, automation: str, run_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._key(automation),
            UpdateExpression="DELETE holders :run",
            ExpressionAttributeValues={":run": {"SS": [run_id]}},
        )

    def holders(self, automation: str) -> set[str]:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(automation), ConsistentRead=True
        ).get("Item", {})
        return set(item.get("holders", {}).get("SS", []))
