"""Markers (first writer wins, with expiry) and API tokens, as items of the runs table."""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Any

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import DeleteError, UpdateError

from ..domain.clock import iso, parse_iso
from ..services.ports import TokenRecord
from ..settings import Settings
from .dynamo_models import Tables, bind_tables
from .dynamo_repository import ConditionFailed, conditional

MARK_SK = "MARK"
TOKEN_SK = "TOKEN"
LIST_PK = "TOKEN#ALL"  # the listing partition (a hash is 64 hex digits: never "ALL")


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
    """API tokens. Authentication reads pk="TOKEN#<hash>", sk="TOKEN"; the listing is one
    partition, pk="TOKEN#ALL", sk=<token id> (with the hash, to revoke, and the last use). Both
    expire by the table's TTL on `expiresAt`. Every key starts with TOKEN#, which only the
    token admin's role may write (the authorizer may set `lastUsedAt` alone)."""

    def __init__(self, settings: Settings) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)

    @property
    def client(self):
        return self.tables.client

    def _item(self, pk: str, sk: str, record: TokenRecord, **extra: Any):
        expires = math.ceil(record.expires_at.timestamp()) if record.expires_at else None
        return self.tables.token(pk, sk, token_id=record.token_id, role=record.role,
                                 created_at=iso(record.created_at),
                                 description=record.description, expires_at=expires, **extra)

    def put(self, token_hash: str, record: TokenRecord) -> None:
        # The listing entry first: a crash in between leaves a listed token that cannot
        # authenticate (revoke removes it), never a working token nobody can see.
        self._item(LIST_PK, record.token_id, record, token_hash=token_hash).save()
        self._item(f"TOKEN#{token_hash}", TOKEN_SK, record).save()

    def find(self, token_hash: str) -> TokenRecord | None:
        model = self.tables.token
        try:
            item = model.get(f"TOKEN#{token_hash}", TOKEN_SK, consistent_read=True)
        except model.DoesNotExist:
            return None
        return _record(item)

    def list(self) -> list[TokenRecord]:
        return [_record(item) for item in self.tables.token.query(LIST_PK, consistent_read=True)]

    def revoke(self, token_id: str) -> bool:
        model = self.tables.token
        try:
            entry = model.get(LIST_PK, token_id, consistent_read=True)
        except model.DoesNotExist:
            return False
        # The hash item first: from this write on the token no longer authenticates.
        model(f"TOKEN#{entry.token_hash}", TOKEN_SK).delete()
        entry.delete()
        return True

    def touch(self, token_id: str, at) -> None:
        """Set "last used" on the listing item and on the hash item the authorizer reads
        (so the next request within the interval sees it and writes nothing)."""
        model = self.tables.token
        try:
            entry = model.get(LIST_PK, token_id, consistent_read=True)
        except model.DoesNotExist:
            return
        for pk, sk in ((LIST_PK, token_id), (f"TOKEN#{entry.token_hash}", TOKEN_SK)):
            try:
                model(pk, sk).update(actions=[model.last_used_at.set(iso(at))],
                                     condition=model.pk.exists())
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise


def _record(item) -> TokenRecord:
    return TokenRecord(
        token_id=item.token_id, role=item.role, created_at=parse_iso(item.created_at),
        description=item.description,
        expires_at=datetime.fromtimestamp(item.expires_at, timezone.utc)
        if item.expires_at is not None else None,
        last_used_at=parse_iso(item.last_used_at) if item.last_used_at else None)
