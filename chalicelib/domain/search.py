"""Search by payload: the trigger-data keys an automation declares with `index: [...]` become
search keys of its runs, so `GET /runs?triggerData.<key>=<value>` is an index lookup.

A search key is a digest of `key` and the value's text, never the value itself: an index entry
holds nothing the run's stored trigger data does not, and the keys are derived from the trigger
data *as stored*, after redaction (adapters/redacting.py), so a secret in an indexed field is
never findable by its value. A value that redaction touched is not indexed at all.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from .redaction import REDACTED

MAX_INDEX_KEYS = 3
MAX_VALUE_LENGTH = 1024  # longer values are not indexed (a search names them in full)
KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")


def value_text(value: Any) -> str | None:
    """The text a search compares: strings as they are, numbers and booleans as JSON; None
    for anything else (objects, lists, null), which is not indexed."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value == value):
        return json.dumps(value)
    return None


def search_key(key: str, text: str) -> str:
    """The digest an index stores for `key` = `text` (128 bits of SHA-256, hex)."""
    return hashlib.sha256(f"{key}\x00{text}".encode()).hexdigest()[:32]


def search_keys(index: Iterable[str], trigger_data: Any) -> tuple[str, ...]:
    """Search keys of a run: one per declared key present with an indexable, unredacted
    scalar value, in declaration order (at most MAX_INDEX_KEYS)."""
    if not isinstance(trigger_data, dict):
        return ()
    keys = []
    for key in list(index)[:MAX_INDEX_KEYS]:
        text = value_text(trigger_data.get(key))
        if text is None or REDACTED in text or len(text) > MAX_VALUE_LENGTH:
            continue
        keys.append(search_key(key, text))
    return tuple(keys)


def declared_index(definition: dict[str, Any] | None) -> list[str]:
    """The `index` keys of a stored definition (camelCase dict), or none."""
    index = (definition or {}).get("index") or []
    return [key for key in index if isinstance(key, str)]
