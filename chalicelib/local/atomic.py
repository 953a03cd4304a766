"""Make moto's DynamoDB apply each request atomically, as DynamoDB does per item.

moto checks a ConditionExpression and then applies the write without a lock, so two threads
can both pass the same condition; real DynamoDB never lets that happen. The local stack and
the tests serialise moto's DynamoDB request handling so races behave as they will on AWS.
"""
from __future__ import annotations

import threading

_lock = threading.RLock()
_patched = False


def make_moto_dynamodb_atomic() -> None:
    """Serialise moto's DynamoDB request handling (idempotent)."""
    global _patched
    if _patched:
        return
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415 - moto is dev-only

    original = DynamoHandler.call_action

    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action
    _patched = True
