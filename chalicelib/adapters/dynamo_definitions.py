"""Automation definitions stored once per version (content hash) and referenced by run items.

A run item is rewritten on every transition and DynamoDB bills each write per started KB of
the item, so keeping the definition (often 2-3 KB) out of it makes each run write cost one
write unit instead of three. Definitions never change, so each process caches them.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from ..domain.definitions import definition_reference

DEF_SK = "DEF"
BATCH_GET_LIMIT = 100


def _key(ref: str) -> dict[str, Any]:
    return {"pk": {"S": f"DEF#{ref}"}, "sk": {"S": DEF_SK}}


class DefinitionStore:
    """Content-addressed definition items in the runs table, with a per-process cache."""

    def __init__(self, client, table: str) -> None:
        self._client = client
        self._table = table
        self._known: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def ref(self, definition: dict[str, Any]) -> str:
        """The reference of `definition`, storing it first if this process has not."""
        ref, text = definition_reference(definition)
        with self._lock:
            if ref in self._known:
                return ref
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**_key(ref), "definition": {"S": text}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:  # already stored by another process: same content
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        with self._lock:
            self._known[ref] = definition
        return ref

    def resolve(self, refs: Iterable[str | None]) -> dict[str, dict[str, Any]]:
        """ref → definition for every given reference (one BatchGetItem for those not cached)."""
        wanted = {ref for ref in refs if ref}
        with self._lock:
            missing = sorted(wanted - self._known.keys())
        for start in range(0, len(missing), BATCH_GET_LIMIT):
            self._fetch(missing[start:start + BATCH_GET_LIMIT])
        with self._lock:
            return {ref: self._known[ref] for ref in wanted if ref in self._known}

    def _fetch(self, refs: list[str]) -> None:
        request = {self._table: {"Keys": [_key(ref) for ref in refs], "ConsistentRead": True}}
        while request:
            response = self._client.batch_get_item(RequestItems=request)
            with self._lock:
                for item in response.get("Responses", {}).get(self._table, []):
                    self._known[item["pk"]["S"][len("DEF#"):]] = json.loads(
                        item["definition"]["S"])
            request = response.get("UnprocessedKeys") or {}
