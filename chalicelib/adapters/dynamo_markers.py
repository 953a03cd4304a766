"""Markers (first writer wins, with expiry) and API tokens, as items of the runs table."""
from __future__ import annotations

import math
import time
from typing import Any

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import DeleteError

from ..domain.clock import iso, parse_iso
from ..services.ports import TokenRecord
from ..settings import Settings
from .dynamo_models import Tables, bind_tables
from .dynamo_repository import ConditionFailed, conditional

MARK_SK = "MARK"
TOKEN_SK = "TOKEN"


class DynamoMarkers:
    """Markers: pk="MARK#<key>", sk="MARK", `value` (JSON) and `expiresAt` (TTL)."""

    def __init__(self, settings: Settings, clock=time.time) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)
        self._clock = clock

    @property
    def client(self):
        """The botocore client every request goes through (to count requests)."""
        return self.tables.client

    def put_once(self, key: str, value: dict[str, Any], ttl_seconds: int) -> dict[str, Any] | None:
        """One conditional put: wins when no marker exists or the stored one has expired."""
        model = self.tables.marker
        now = self._clock()
        item = model(f"MARK#{key}", MARK_SK, value=value,
                     expires_at=math.ceil(now + ttl_seconds))
        # TTL deletes lazily, so an expired marker may still be there: it no longer counts.
        condition = model.pk.does_not_exist() | (model.expires_at <= now)
        kwargs = item.get_save_kwargs_from_instance(
            condition=condition, return_values_on_condition_failure=ALL_OLD)
        try:
            conditional(self.client.put_item, kwargs)
        except ConditionFailed as exc:
            return model.from_raw_data(exc.item).value if exc.item else None
        return None

    def get(self, key: str) -> dict[str, Any] | None:
        model = self.tables.marker
        try:
            item = model.get(f"MARK#{key}", MARK_SK, consistent_read=True)
        except model.DoesNotExist:
            return None
        return item.value if item.expires_at > self._clock() else None

    def delete(self, key: str, only_if: dict[str, Any] | None = None) -> bool:
        model = self.tables.marker
        condition = model.pk.exists() if only_if is None else (model.value == only_if)
        try:
            model(f"MARK#{key}", MARK_SK).delete(condition=condition)
        except DeleteError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True


class DynamoTokenStore:
    """API tokens by the SHA-256 of their secret: pk="TOKEN#<hash>", sk="TOKEN"."""

    def __init__(self, settings: Settings) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)

    def put(self, token_hash: str, record: TokenRecord) -> None:
        self.tables.token(
            f"TOKEN#{token_hash}", TOKEN_SK, token_id=record.token_id, role=record.role,
            created_at=iso(record.created_at), description=record.description,
        ).save()

    def find(self, token_hash: str) -> TokenRecord | None:
        model = self.tables.token
        try:
            item = model.get(f"TOKEN#{token_hash}", TOKEN_SK, consistent_read=True)
        except model.DoesNotExist:
            return None
        return TokenRecord(token_id=item.token_id, role=item.role,
                           created_at=parse_iso(item.created_at), description=item.description)
